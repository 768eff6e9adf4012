"""The API contracts (OpenAPI, GraphQL), shipped inside the package as data."""
