"""The warm inference service (server side: protocol.py, server.py, handlers.py) and its stdlib-only
client (client.py, which the Blender add-on imports). Importing this package pulls in nothing heavy."""
