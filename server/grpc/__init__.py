"""The gRPC transport of the chat: chat.proto, its generated stubs and the server."""
