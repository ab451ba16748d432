"""How the service is put together: services, the lifespan, the app state, what routes get."""
