#!/usr/bin/env node
'use strict';
// `npm run prebuild`: the addon as a N-API prebuild (prebuildify --napi --strip), plus the
// nsnet-cni native client next to it. prebuildify only keeps the .node; but an install that
// finds a prebuild compiles nothing, so without this the client would be missing and every
// CNI call would start node (bin/nsnet-cni falls back to it). The client sits at the same depth
// as in build/Release, so its fallback path (../../dist/lib/cni/main.js) holds in both places.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
execFileSync(bin('prebuildify'), ['--napi', '--strip'], { cwd: root, stdio: 'inherit' });
const client = path.join(root, 'build', 'Release', 'nsnet-cni');
if (!fs.existsSync(client)) throw new Error(`prebuild: ${client} was not built`);
const dest = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'nsnet-cni');
fs.copyFileSync(client, dest);
fs.chmodSync(dest, 0o755);
execFileSync('strip', [dest]);
console.log(`prebuild: ${path.relative(root, dest)}`);
