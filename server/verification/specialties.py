"""The professions and specialties a Confrère account may choose (sign-up form,
"Spécialité"). Medical specialties follow the French list of diplômes d'études
spécialisées (arrêté du 21 avril 2017, as amended) plus general practice; then the
other health professions of the Code de la santé publique (part IV), paramedical
included; "Régulateur" (SAS regulators) comes last, as in the guide, and is only
given through a regulator sign-up link.
"""

from __future__ import annotations

__all__ = ["MEDICAL", "OTHER_PROFESSIONS", "REGULATOR", "SPECIALTIES", "is_specialty"]

MEDICAL: tuple[str, ...] = (
    "Médecine générale",
    "Allergologie",
    "Anatomie et cytologie pathologiques",
    "Anesthésie-réanimation",
    "Biologie médicale",
    "Cardiologie et maladies vasculaires",
    "Chirurgie de la face et du cou",
    "Chirurgie maxillo-faciale",
    "Chirurgie orale",
    "Chirurgie orthopédique et traumatologique",
    "Chirurgie pédiatrique",
    "Chirurgie plastique, reconstructrice et esthétique",
    "Chirurgie thoracique et cardiovasculaire",
    "Chirurgie vasculaire",
    "Chirurgie viscérale et digestive",
    "Dermatologie et vénéréologie",
    "Endocrinologie, diabétologie, nutrition",
    "Génétique médicale",
    "Gériatrie",
    "Gynécologie médicale",
    "Gynécologie obstétrique",
    "Hématologie",
    "Hépato-gastro-entérologie",
    "Maladies infectieuses et tropicales",
    "Médecine cardiovasculaire",
    "Médecine d'urgence",
    "Médecine et santé au travail",
    "Médecine intensive-réanimation",
    "Médecine interne et immunologie clinique",
    "Médecine légale et expertises médicales",
    "Médecine nucléaire",
    "Médecine physique et de réadaptation",
    "Médecine vasculaire",
    "Néphrologie",
    "Neurochirurgie",
    "Neurologie",
    "Oncologie",
    "Ophtalmologie",
    "Oto-rhino-laryngologie - chirurgie cervico-faciale",
    "Pédiatrie",
    "Pneumologie",
    "Psychiatrie",
    "Radiologie",
    "Rhumatologie",
    "Santé publique",
    "Urologie",
)

OTHER_PROFESSIONS: tuple[str, ...] = (
    "Chirurgien-dentiste",
    "Orthodontie",
    "Sage-femme",
    "Pharmacien",
    "Infirmier",
    "Infirmier en pratique avancée",
    "Masseur-kinésithérapeute",
    "Pédicure-podologue",
    "Ergothérapeute",
    "Psychomotricien",
    "Orthophoniste",
    "Orthoptiste",
    "Manipulateur d'électroradiologie médicale",
    "Audioprothésiste",
    "Opticien-lunetier",
    "Diététicien",
    "Psychologue",
    "Ostéopathe",
    "Technicien de laboratoire médical",
)

REGULATOR = "Régulateur"

SPECIALTIES: tuple[str, ...] = (*MEDICAL, *OTHER_PROFESSIONS, REGULATOR)
_SELECTABLE = frozenset((*MEDICAL, *OTHER_PROFESSIONS))


def is_specialty(name: str) -> bool:
    """True for a specialty a practitioner may pick at sign-up (not "Régulateur")."""
    return name in _SELECTABLE
