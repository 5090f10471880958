// Types of scripts/sandbox-guard.js (plain JavaScript, so the scripts can require it). TypeScript
// imports these with `import type` and loads the module with require() from the package root,
// since dist/ holds no copy of scripts/.

/** The marker file scripts/sandbox.js writes into its private /run: the namespace's inode. */
export declare const MARKER: string;
/** The inode of this process's network namespace, as a string. */
export declare function netnsInode(): string;
/** Why this process is not inside the sandbox, or null when it is. */
export declare function outsideReason(): string | null;
/** Whether this process runs inside the sandbox made by scripts/sandbox.js. */
export declare function inSandbox(): boolean;
/** Throws unless inside the sandbox; `how` tells the reader how to get in. */
export declare function assertInSandbox(how?: string): void;
