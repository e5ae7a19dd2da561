// The terms of use and the data-protection policy, by version. Sign-up records the
// versions accepted (CONFRERE_TERMS_VERSION, CONFRERE_PRIVACY_VERSION): a new version
// of a text is a new entry here, and the server's setting names it.
export const TERMS = {
  "2025-01": {
    title: "Conditions générales d'utilisation",
    date: "1er janvier 2025",
    sections: [
      ["Objet", "Confrère est une messagerie sécurisée réservée aux professionnels de santé et aux régulateurs du Service d'Accès aux Soins (SAS). Elle permet d'échanger des messages et des documents, seul ou à plusieurs, autour de la prise en charge des patients, et d'adresser des patients à un confrère."],
      ["Accès au service", "L'inscription est gratuite. L'usage de la messagerie suppose une identité vérifiée, par Pro Santé Connect (carte CPS ou e-CPS) ou par l'examen d'une pièce d'identité. Votre accès est nominatif : vos identifiants doivent rester confidentiels et ne doivent jamais être communiqués à quiconque."],
      ["Vos engagements", "Vous vous engagez à n'utiliser Confrère que dans le cadre de votre exercice professionnel, à ne partager des informations relatives à un patient qu'avec des professionnels participant à sa prise en charge, dans le respect du secret professionnel (article L. 1110-4 du code de la santé publique), et à ne pas tenir de propos excessifs, inappropriés, insultants, discriminatoires ou contraires à la loi."],
      ["Urgences", "Les messages ne sont pas lus en temps réel. Pour toute information urgente, contactez le professionnel concerné par un moyen de communication approprié."],
      ["Sécurité", "Les messages, les documents partagés dans les conversations et les en-têtes des cas patients sont chiffrés de bout en bout sur vos appareils : le service ne peut pas les lire. Vérifiez le numéro de sécurité de vos correspondants pour vous assurer que personne ne s'interpose dans vos échanges."],
      ["Invitations", "Vous pouvez inviter par e-mail un professionnel qui n'a pas encore de compte : il reçoit un message l'invitant à s'inscrire, et rejoint la conversation dès son compte créé et son adresse confirmée."],
      ["Suspension", "Un compte dont l'identité ne peut être établie, ou dont l'usage méconnaît les présentes conditions, peut être suspendu."],
      ["Évolution", "Ces conditions peuvent évoluer ; la nouvelle version vous sera présentée et devra être acceptée pour continuer à utiliser le service."],
    ],
  },
};

export const PRIVACY = {
  "2025-01": {
    title: "Politique de protection des données",
    date: "1er janvier 2025",
    sections: [
      ["Responsable du traitement", "L'éditeur de Confrère traite vos données pour fournir le service de messagerie, vérifier votre identité et acheminer les notifications, conformément au règlement (UE) 2016/679 (RGPD) et à la loi « Informatique et libertés »."],
      ["Données traitées", "Votre compte (nom, prénom, adresse e-mail, code postal, ville, spécialité, mode d'exercice, numéro RPPS ou ADELI), la vérification de votre identité (résultat de Pro Santé Connect ou pièce d'identité et selfie), vos appareils et sessions, et les métadonnées des échanges (qui échange avec qui, quand). Le contenu des messages, des fichiers de conversation et des en-têtes de cas patients est chiffré de bout en bout : nous ne pouvons pas le lire."],
      ["Hébergement", "Les données sont hébergées en France chez un hébergeur certifié pour les données de santé (HDS)."],
      ["Durées de conservation", "Les pièces d'identité sont supprimées 30 jours après la décision de vérification. Les cas patients clos sont conservés 20 ans puis purgés. Les comptes inactifs sont supprimés sur demande ou après la fin de votre exercice."],
      ["Destinataires", "Vos nom, spécialité et lieux d'exercice sont visibles des professionnels qui partagent une conversation avec vous et, si votre profil est visible, de ceux qui vous trouvent dans l'annuaire. Vous pouvez masquer votre profil de l'annuaire."],
      ["Vos droits", "Vous disposez d'un droit d'accès, de rectification, d'effacement, de limitation et d'opposition, ainsi que du droit d'introduire une réclamation auprès de la CNIL. Pour les exercer, écrivez au délégué à la protection des données de l'éditeur."],
      ["Cookies", "Confrère n'utilise aucun cookie publicitaire ni de mesure d'audience. Un cookie technique, limité à la vérification Pro Santé Connect, relie cette vérification à votre navigateur ; il expire en 30 minutes au plus."],
    ],
  },
};
