/**
 * Where dockerd looks for plugin sockets; the plugin's name is the file's. Alone in its file so
 * that `nsnet --help` can show it without loading the plugin (and with it the library).
 */
export const DEFAULT_SOCKET = '/run/docker/plugins/nsnet.sock';
