// The French words of the client for everything the server can answer: every error
// code of SPEC.md §8, every field and reason of §8.1, the outcomes of Pro Santé Connect
// and the reasons a message cannot be decrypted. The server's messages are English,
// for developers: they never reach the screen (tests/web/test_catalogue.py renders
// every entry). To add a field or a reason to the server, add it here and in SPEC.md.
import { ConnectionLost, ServerError } from "./client.js";
import { AttachmentError } from "./e2ee.js";
import { ApiError } from "./rest.js";

/** Error codes (SPEC.md §8), as a sentence. */
export const ERRORS = {
  bad_frame: "La demande est incomplète ou invalide.",
  unauthenticated: "Votre session a expiré : reconnectez-vous.",
  forbidden: "Vous n'avez pas les droits pour cette action.",
  identity_unverified: "Votre identité n'est pas encore vérifiée : la messagerie s'ouvrira dès qu'elle le sera.",
  not_found: "Introuvable : cet élément n'existe pas ou plus.",
  conflict: "C'est déjà fait, ou cela entre en conflit avec l'état actuel.",
  too_large: "C'est trop volumineux (les fichiers sont limités à 50 Mo).",
  rate_limited: "Trop de tentatives : réessayez dans un instant.",
  internal: "Une erreur inattendue s'est produite sur le serveur : réessayez dans un instant.",
  unavailable: "Service momentanément indisponible : réessayez dans un instant.",
};

/** Fields a 400 can name (SPEC.md §8.1): the label the user sees, and what is expected. */
export const FIELDS = {
  // accounts, sessions, devices
  email: ["Adresse e-mail", "saisissez une adresse e-mail valide, par exemple prenom.nom@exemple.fr."],
  password: ["Mot de passe", "10 caractères au moins ; évitez les mots de passe courants et ceux tirés de votre nom ou de votre e-mail."],
  new_password: ["Nouveau mot de passe", "10 caractères au moins ; évitez les mots de passe courants et ceux tirés de votre nom ou de votre e-mail."],
  first_name: ["Prénom", "renseignez votre prénom (100 caractères au plus)."],
  last_name: ["Nom", "renseignez votre nom (100 caractères au plus)."],
  postcode: ["Code postal", "un code postal français existant, à 5 chiffres."],
  city: ["Ville", "renseignez la ville (100 caractères au plus)."],
  specialty: ["Spécialité", "sélectionnez une spécialité de la liste."],
  practice_mode: ["Mode d'exercice", "choisissez Libéral ou Salarié."],
  rpps: ["Numéro RPPS ou ADELI", "un numéro RPPS (11 chiffres) ou ADELI (9 chiffres) valide."],
  terms_version: ["Conditions générales", "acceptez la version en vigueur des conditions générales (rechargez la page)."],
  privacy_version: ["Politique de protection des données", "acceptez la version en vigueur de la politique de protection des données (rechargez la page)."],
  regulator_link: ["Lien d'inscription régulateur", "ce lien n'est pas valide : demandez-en un nouveau."],
  pro_sante_connect: ["Pro Santé Connect", "recommencez l'inscription avec votre carte CPS ou e-CPS."],
  code: ["Code de vérification", "saisissez les 6 chiffres reçus par e-mail."],
  device_id: ["Appareil", "cet appareil n'est plus associé à votre compte : reconnectez-vous."],
  device_name: ["Nom de l'appareil", "100 caractères au plus."],
  name: ["Nom", "entre 1 et 200 caractères, sans caractère spécial invisible."],
  // identity verification and review
  state: ["Vérification Pro Santé Connect", "cette vérification n'est plus en cours : recommencez-la."],
  side: ["Photo", "choisissez le recto, le verso ou le selfie."],
  document: ["Pièce d'identité", "choisissez Passeport ou Carte d'identité, et envoyez toutes les photos demandées."],
  issuing_country: ["Pays émetteur", "choisissez le pays qui a délivré la pièce d'identité."],
  decision: ["Décision", "approuver ou refuser."],
  reason: ["Motif", "indiquez un motif (500 caractères au plus)."],
  // administration
  verified: ["Vérification", "oui ou non."],
  actor: ["Auteur", "un identifiant de 64 caractères au plus."],
  action: ["Action", "64 caractères au plus."],
  target: ["Cible", "un identifiant de 64 caractères au plus."],
  since: ["Depuis", "une date valide."],
  before: ["Avant", "une date valide."],
  limit: ["Nombre de résultats", "un nombre entre 1 et 50."],
  // attachments
  kind: ["Type de pièce jointe", "un fichier de conversation ou un document."],
  room: ["Conversation", "cette conversation n'existe pas ou plus."],
  content_type: ["Type de fichier", "seuls les PDF, JPEG et PNG sont acceptés."],
  // push subscriptions
  endpoint: ["Notifications", "ce navigateur n'a pas fourni d'adresse de notification valable."],
  p256dh: ["Notifications", "ce navigateur n'a pas fourni de clés de notification valables."],
  auth: ["Notifications", "ce navigateur n'a pas fourni de clés de notification valables."],
  token: ["Notifications", "l'application n'a pas fourni de jeton de notification valable."],
  // key backup
  version: ["Sauvegarde des clés", "la sauvegarde a été remplacée depuis un autre appareil."],
  salt: ["Sauvegarde des clés", "les paramètres de la sauvegarde sont invalides (rechargez la page)."],
  opslimit: ["Sauvegarde des clés", "les paramètres de la sauvegarde sont invalides (rechargez la page)."],
  memlimit: ["Sauvegarde des clés", "les paramètres de la sauvegarde sont invalides (rechargez la page)."],
  check: ["Sauvegarde des clés", "les paramètres de la sauvegarde sont invalides (rechargez la page)."],
  entries: ["Sauvegarde des clés", "des clés envoyées à la sauvegarde sont invalides."],
  after: ["Sauvegarde des clés", "la lecture de la sauvegarde a échoué (rechargez la page)."],
  // profiles
  users: ["Confrères", "de 1 à 100 identifiants."],
  // directory and agenda
  q: ["Recherche", "saisissez un nom, une spécialité ou une ville."],
  organisation: ["Organisation", "choisissez une organisation de la liste."],
  cpts: ["CPTS", "choisissez une CPTS de la liste."],
  near: ["Lieu", "un code postal ou le nom d'une commune."],
  lat: ["Latitude", "une latitude valide."],
  lon: ["Longitude", "une longitude valide."],
  radius_km: ["Rayon", "un rayon en kilomètres, de 1 à 200."],
  cursor: ["Page de résultats", "relancez la recherche."],
  from: ["Début", "une date valide."],
  to: ["Fin", "une date après le début, 31 jours au plus tard."],
  visible: ["Profil visible", "oui ou non."],
  required_fields: ["Informations patient demandées", "choisissez parmi les informations du formulaire patient."],
  address: ["Adresse", "renseignez l'adresse (200 caractères au plus)."],
  label: ["Motif de consultation", "renseignez un libellé (100 caractères au plus)."],
  duration_min: ["Durée", "une durée en minutes, de 5 à 480."],
  slots: ["Créneaux", "des créneaux valides : lieu, début et fin le même jour, motifs."],
  // referrals and the SAS
  slot: ["Créneau", "choisissez un créneau disponible."],
  motive: ["Motif de consultation", "choisissez un motif proposé pour ce créneau."],
  message: ["Message à destination du praticien", "2 000 caractères au plus."],
  attachments: ["Pièces jointes", "des fichiers PDF, JPEG ou PNG de moins de 50 Mo."],
  consultation_type: ["Type de consultation", "au cabinet ou en vidéo."],
  instructions: ["Consignes avant la prise de rendez-vous", "1 000 caractères au plus."],
  patient: ["Informations du patient", "vérifiez les informations du patient : certaines manquent ou sont invalides."],
};

/** Reasons (SPEC.md §8.1): said instead of the field's generic hint. */
export const REASONS = {
  password_short: "Le mot de passe doit contenir au moins 10 caractères.",
  password_long: "Le mot de passe doit contenir au plus 256 caractères.",
  password_repeated: "Le mot de passe ne doit pas répéter les mêmes quelques caractères.",
  password_common: "Ce mot de passe est trop courant (il figure dans des listes de mots de passe dérobés) : choisissez-en un autre.",
  password_sequence: "Le mot de passe ne doit pas être une suite de chiffres.",
  password_weak: "Ce mot de passe est trop facile à deviner : ajoutez quelques mots, une phrase de passe convient très bien.",
  password_personal: "Le mot de passe ne doit pas reprendre votre nom ou votre adresse e-mail.",
  password_wrong: "Ce n'est pas votre mot de passe actuel.",
  code_malformed: "Le code de vérification se compose de 6 chiffres.",
  code_wrong: "Ce n'est pas le code envoyé : vérifiez l'e-mail reçu.",
  postcode_unknown: "Ce code postal n'existe pas : vérifiez-le (les codes CEDEX ne sont pas acceptés).",
  place_unknown: "Lieu inconnu : saisissez un code postal (75011) ou le nom d'une commune (Paris 11e, Lyon 3e, Douai).",
  code_expired: "Ce code a expiré : demandez-en un nouveau.",
  code_exhausted: "Ce code a été essayé trop de fois : demandez-en un nouveau.",
  code_locked: "Trop de codes erronés : ce compte ne peut plus être confirmé. Créez un nouveau compte.",
  code_none: "Aucun code en attente : demandez-en un nouveau.",
  already_confirmed: "Votre adresse e-mail est déjà confirmée.",
  email_taken: "Un compte existe déjà avec cette adresse e-mail : connectez-vous.",
  address_in_use: "Un compte utilise déjà cette adresse e-mail : un compte régulateur a besoin de sa propre adresse.",
  no_backup: "Aucune sauvegarde de vos clés n'existe sur ce compte.",
  backup_replaced: "La sauvegarde de vos clés a été remplacée depuis un autre appareil : utilisez la nouvelle phrase de récupération.",
  slot_taken: "Ce créneau vient d'être réservé par quelqu'un d'autre : choisissez-en un autre.",
  regulator_only: "Pour un compte régulateur, sélectionnez la profession « Régulateur » (en bas de la liste).",
  regulator_needs_link: "La profession « Régulateur » s'obtient par le lien sécurisé reçu par e-mail.",
  link_invalid: "Ce lien d'inscription n'est pas valide : vérifiez que vous l'avez copié en entier.",
  link_expired: "Ce lien d'inscription a expiré (7 jours) : demandez-en un nouveau.",
  link_email: "Utilisez l'adresse e-mail à laquelle le lien d'inscription a été envoyé.",
  link_used: "Ce lien d'inscription a déjà servi à créer un compte : connectez-vous.",
  card_mismatch: "Doit être identique à votre carte CPS ou e-CPS (seuls les accents et les majuscules peuvent changer).",
  psc_ticket_missing: "Votre connexion Pro Santé Connect a expiré : recommencez avec votre carte CPS ou e-CPS.",
  number_taken: "Un compte vérifié existe déjà avec ce numéro RPPS ou ADELI : connectez-vous à ce compte.",
  email_unconfirmed: "Confirmez d'abord votre adresse e-mail.",
  already_verified: "Votre identité est déjà vérifiée.",
  request_pending: "Une demande de vérification manuelle est déjà en cours d'examen.",
  psc_not_configured: "La connexion par carte CPS ou e-CPS n'est pas disponible sur ce service : utilisez la vérification manuelle.",
  psc_unavailable: "Pro Santé Connect ne répond pas : réessayez dans un instant, ou utilisez la vérification manuelle.",
  psc_state: "Cette vérification Pro Santé Connect n'est plus valable (plus de 10 minutes, ou déjà utilisée) : recommencez.",
  psc_other_browser: "Cette vérification a été commencée dans un autre navigateur : recommencez-la depuis celui-ci.",
  psc_refused: "Pro Santé Connect ne vous a pas authentifié(e) : recommencez, ou utilisez la vérification manuelle.",
  psc_answer_refused: "La réponse de Pro Santé Connect n'a pas pu être vérifiée : recommencez, ou utilisez la vérification manuelle.",
};

/** What a mismatch between the card and the account names (#verification=mismatch&fields=). */
export const CARD_FIELDS = { first_name: "prénom", last_name: "nom", rpps: "numéro RPPS ou ADELI" };

/** Why a message cannot be read (the end-to-end layer's error kinds). */
export const UNREADABLE = {
  UnknownSession: "la clé de ce message n'est pas (encore) arrivée sur cet appareil.",
  BadSignature: "sa signature ne correspond pas à l'expéditeur.",
  Tampered: "il a été altéré en chemin.",
  Truncated: "il est incomplet.",
  Replayed: "il a déjà été reçu (rejeu).",
  TooFarAhead: "il arrive trop en avance sur les précédents.",
  BadVersion: "il vient d'une version de l'application que celle-ci ne sait pas lire.",
  BadKey: "la clé est invalide.",
  other: "son contenu est illisible.",
};

function retryHint(err) {
  const s = err.retryAfter ?? err.retry_after;
  return s ? ` (dans ${Math.max(1, Math.ceil(s))} s)` : "";
}

/** The French sentence for any error a screen may catch; never the server's English. */
export function describe(err, { action } = {}) {
  if (err instanceof ApiError || err instanceof ServerError) {
    if (err.reason && REASONS[err.reason]) {
      const label = err.field && FIELDS[err.field] && err.reason === "card_mismatch" ? `« ${FIELDS[err.field][0]} » : ` : "";
      return label + REASONS[err.reason];
    }
    if (err.code === "unauthenticated" && action === "login") return "Adresse e-mail ou mot de passe incorrect.";
    if (err.code === "bad_frame" && err.field) {
      const known = FIELDS[err.field] || FIELDS[err.field.split(".").pop()];
      if (known) return `« ${known[0]} » : ${known[1]}`;
    }
    if (err.code === "rate_limited") return `Trop de tentatives : réessayez dans un instant${retryHint(err)}.`;
    return ERRORS[err.code] || ERRORS.internal;
  }
  if (err instanceof ConnectionLost) return "Connexion perdue : réessayez une fois reconnecté.";
  if (err instanceof AttachmentError) return `Fichier refusé : ${err.message}.`;
  if (err?.name === "TypeError") return "Le serveur est injoignable : vérifiez votre connexion.";
  return ERRORS.internal;
}

/** "1 message", "3 messages". */
export function plural(n, one, many) {
  return `${n} ${n > 1 ? many : one}`;
}
