"""Confrère clients: python/ (asyncio SDK) and the command-line chat."""
