/** A frame that breaks the owner socket's protocol: the connection that sent it is closed. */
export class ProtocolError extends Error {}
