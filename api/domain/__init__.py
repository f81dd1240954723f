"""The domain core: the rules of clients, campaigns and audiences, and the errors they raise.
No HTTP here: the API (api/exceptions.py), the admin and the import map these errors to what
their users see."""
