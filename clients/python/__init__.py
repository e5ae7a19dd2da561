"""Python SDK for Confrère: REST log-in plus an asyncio WebSocket client."""

from .client import Client, ClientState, Incoming
from .e2ee import Decrypted, Deleted, EncryptedClient, Undecryptable
from .errors import ClientClosed, ConfrereError, ConnectionLost, ServerError
from .profiles import Profile, Profiles
from .rest import Account, log_in, request, sign_up
from .search import SearchHit

__all__ = [
    "Account",
    "Client",
    "ClientClosed",
    "ClientState",
    "ConfrereError",
    "ConnectionLost",
    "Decrypted",
    "Deleted",
    "EncryptedClient",
    "Incoming",
    "Profile",
    "Profiles",
    "SearchHit",
    "ServerError",
    "Undecryptable",
    "log_in",
    "request",
    "sign_up",
]
