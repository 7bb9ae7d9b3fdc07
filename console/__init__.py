"""The staff console: server-rendered pages under /console, beside the API in its process.

It calls the services the API's routes call (api.views, api.commands, the read
models) and applies the same roles matrix; only the door differs: a session
cookie from an OpenID Connect sign-in instead of a bearer token, HTML instead
of JSON. docs/design.md (Console) holds its rules.
"""
