"""The HTTP kit every route shares: problems, errors, the OpenAPI contract and docs, ETags,
pagination, client addresses, Location headers, the home page and the HTTP server itself."""
