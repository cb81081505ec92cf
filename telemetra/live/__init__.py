"""The live feed: committed points pushed to stream clients (SSE, WebSocket) and watches, across processes."""
