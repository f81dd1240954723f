"""Development tools, not part of the service: the fake SMS gateway (`make gateway`, the Procfile's
`gateway`, compose's `dev` profile, and the tests' HTTP gateway)."""
