"""Word lists for the synthetic directory: frequent French first and last names, the
specialty mix of French health professionals, street names. Data, no behaviour."""

from __future__ import annotations

__all__ = ["FIRST_NAMES", "LAST_NAMES", "SPECIALTIES", "STREETS"]

FIRST_NAMES = (
    "Marie", "Jean", "Pierre", "Michel", "Philippe", "Nathalie", "Isabelle", "Sylvie",
    "Catherine", "Alain", "Nicolas", "Christophe", "Patrick", "Sophie", "Stéphane",
    "Christine", "Frédéric", "Laurent", "Valérie", "Sandrine", "Éric", "David", "Olivier",
    "Céline", "Julien", "Thomas", "Véronique", "Anne", "Émilie", "Caroline", "Aurélie",
    "Camille", "Julie", "Laure", "Claire", "Hélène", "Élodie", "Sébastien", "Guillaume",
    "Mathieu", "Vincent", "François", "Antoine", "Alexandre", "Maxime", "Romain", "Hugo",
    "Lucas", "Léa", "Manon", "Chloé", "Sarah", "Inès", "Emma", "Louise", "Jeanne",
    "Agnès", "Brigitte", "Dominique", "Pascal", "Thierry", "Bruno", "Didier", "Gilles",
    "Hervé", "Jérôme", "Arnaud", "Benoît", "Cédric", "Damien", "Fabrice", "Grégory",
    "Jérémy", "Karine", "Ludovic", "Mélanie", "Nadia", "Pauline", "Rachid", "Samia",
    "Yasmina", "Karim", "Mehdi", "Fatima", "Hicham", "Amina", "Youssef", "Leïla",
    "Emmanuel", "Benjamin", "Charlotte", "Margaux", "Océane", "Justine", "Marion",
    "Audrey", "Virginie", "Stéphanie", "Delphine", "Florence", "Martine", "Monique",
    "Françoise", "Danielle", "Bernard", "Daniel", "Jacques", "Gérard", "René", "Yves",
    "Anaïs", "Clément", "Quentin", "Adrien", "Florian", "Kevin", "Jonathan", "Paul",
    "Louis", "Arthur", "Gabriel", "Raphaël", "Zoé", "Lina", "Mathilde", "Noémie",
)  # fmt: skip

LAST_NAMES = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois",
    "Moreau", "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand",
    "Morel", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau",
    "Vincent", "Muller", "Lefebvre", "Faure", "André", "Mercier", "Blanc", "Guérin",
    "Boyer", "Garnier", "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin",
    "Robin", "Clément", "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier",
    "Masson", "Marchand", "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer",
    "Dufour", "Meunier", "Brun", "Blanchard", "Giraud", "Joly", "Rivière", "Lucas",
    "Brunet", "Gaillard", "Barbier", "Arnaud", "Martinez", "Gérard", "Roche", "Renard",
    "Schmitt", "Roy", "Leroux", "Colin", "Vidal", "Caron", "Picard", "Roger", "Fabre",
    "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix", "Olivier", "Philippe", "Bourgeois",
    "Pierre", "Benoît", "Rey", "Leclerc", "Payet", "Rolland", "Leclercq", "Guillaume",
    "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot", "Hubert", "Berger", "Carpentier",
    "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps", "Huet", "Vasseur", "Perez",
    "Boucher", "Fleury", "Royer", "Klein", "Jacquet", "Adam", "Paris", "Poirier", "Marty",
    "Aubry", "Guyot", "Carré", "Charles", "Renault", "Charpentier", "Ménard", "Maillard",
    "Baron", "Bertin", "Bailly", "Hervé", "Schneider", "Fernandez", "Le Gall", "Collet",
    "Léger", "Bouvier", "Julien", "Prévost", "Millet", "Perrot", "Daniel", "Le Roux",
    "Cousin", "Germain", "Breton", "Besson", "Langlois", "Rémy", "Le Goff", "Pelletier",
    "Lévêque", "Perrier", "Leblanc", "Barré", "Lebrun", "Marchal", "Weber", "Mallet",
    "Hamon", "Boulanger", "Jacob", "Monnier", "Michaud", "Rodriguez", "Guichard", "Gillet",
    "Étienne", "Grondin", "Poulain", "Tessier", "Chevallier", "Collin", "Chauvin",
    "Da Silva", "Bouchet", "Gay", "Lemaître", "Bénard", "Maréchal", "Humbert", "Reynaud",
    "Antoine", "Hoarau", "Perret", "Barthélemy", "Cordier", "Pichon", "Lejeune", "Gilbert",
    "Lamy", "Delaunay", "Pasquier", "Carlier", "Laporte", "Benali", "Haddad", "Mansouri",
    "Canu", "Lesage", "Pruvost", "Lucet", "Ruytoor", "Pinart", "Assarini", "Nguyen",
    "Tran", "Kaci", "Bouchard", "Vallet", "Toussaint", "Devaux", "Lebon", "Courtois",
)  # fmt: skip

# (specialty, share of the directory in per mille, title shown before the name). The
# names are those of the sign-up form (server.verification.specialties): one vocabulary
# for sign-up, the directory and its filters.
SPECIALTIES = (
    ("Médecine générale", 230, "Dr"), ("Infirmier", 200, ""),
    ("Masseur-kinésithérapeute", 110, ""), ("Pharmacien", 80, "Dr"),
    ("Chirurgien-dentiste", 60, "Dr"), ("Sage-femme", 30, ""), ("Psychologue", 35, ""),
    ("Orthophoniste", 25, ""), ("Pédicure-podologue", 15, ""), ("Diététicien", 10, ""),
    ("Orthoptiste", 6, ""), ("Psychiatrie", 18, "Dr"), ("Anesthésie-réanimation", 15, "Dr"),
    ("Radiologie", 13, "Dr"), ("Cardiologie et maladies vasculaires", 12, "Dr"),
    ("Pédiatrie", 12, "Dr"), ("Gynécologie obstétrique", 11, "Dr"), ("Ophtalmologie", 10, "Dr"),
    ("Dermatologie et vénéréologie", 7, "Dr"), ("Biologie médicale", 10, "Dr"),
    ("Hépato-gastro-entérologie", 6, "Dr"),
    ("Chirurgie orthopédique et traumatologique", 6, "Dr"),
    ("Oto-rhino-laryngologie - chirurgie cervico-faciale", 5, "Dr"), ("Pneumologie", 5, "Dr"),
    ("Rhumatologie", 5, "Dr"), ("Neurologie", 5, "Dr"),
    ("Endocrinologie, diabétologie, nutrition", 4, "Dr"), ("Néphrologie", 4, "Dr"),
    ("Urologie", 3, "Dr"), ("Gériatrie", 5, "Dr"), ("Médecine d'urgence", 8, "Dr"),
    ("Oncologie", 4, "Dr"), ("Médecine physique et de réadaptation", 3, "Dr"),
    ("Chirurgie viscérale et digestive", 3, "Dr"),
)  # fmt: skip

STREETS = (
    "rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo", "rue Pasteur",
    "place de la Mairie", "rue du Général de Gaulle", "avenue de la Gare", "rue Nationale",
    "rue des Écoles", "rue Gambetta", "avenue Foch", "rue Carnot", "rue Voltaire",
    "rue de l'Église", "rue du Moulin", "chemin des Vignes", "rue d'Auby", "allée des Tilleuls",
    "boulevard de la Liberté", "rue Émile Zola", "rue Jules Ferry", "avenue du Maréchal Leclerc",
    "rue Saint-Jacques", "quai des Fleurs", "rue du Château", "impasse des Lilas",
)  # fmt: skip
