"""Services for tenants, devices, keys and authentication: store + domain, nothing of HTTP."""
