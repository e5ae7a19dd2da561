"""The practitioner directory: search, cards, booking rules and their JSON views."""
