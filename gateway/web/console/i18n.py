"""The console's words in French and English, and the language of a request: ?lang= (kept in a cookie),
else the cookie, else the browser's Accept-Language, else English."""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("en", "fr")
COOKIE = "gw_lang"

_STATUSES = {
    "en": {"01": "Deposited", "02": "In transit", "03": "Made available", "04": "To be recycled", "05": "Rejected",
           "06": "Suspended", "07": "Service done", "08": "Mandated", "09": "Made available to the accountant",
           "10": "Accounted", "11": "Payment sent", "12": "Completed", None: "Rejected at integration"},
    "fr": {"01": "Déposée", "02": "En cours d'acheminement", "03": "Mise à disposition", "04": "À recycler",
           "05": "Rejetée", "06": "Suspendue", "07": "Service fait", "08": "Mandatée",
           "09": "Mise à disposition du comptable", "10": "Comptabilisée", "11": "Mise en paiement",
           "12": "Complétée", None: "Rejetée à l'intégration"},
}
_STATES = {
    "en": {"RECU": "Received, being processed", "INTEGRE": "Integrated", "INTEGRE_PARTIEL": "Partly integrated",
           "REJETE": "Rejected", "INCIDENTE": "Failed: send it again"},
    "fr": {"RECU": "Reçu, en traitement", "INTEGRE": "Intégré", "INTEGRE_PARTIEL": "Intégré partiellement",
           "REJETE": "Rejeté", "INCIDENTE": "Incidenté : à renvoyer"},
}
_REASONS = {
    "en": {"DOUBLON": "Duplicate", "DEST_INC": "Unknown recipient", "DEST_ERR": "Wrong recipient",
           "CODE_ROUTAGE_ERR": "Wrong routing code", "SIRET_ERR": "Wrong SIRET",
           "JUSTIF_ABS": "Supporting document missing",
           "REF_CT_ABSENT": "Contract reference missing"},
    "fr": {"DOUBLON": "Doublon", "DEST_INC": "Destinataire inconnu", "DEST_ERR": "Destinataire erroné",
           "CODE_ROUTAGE_ERR": "Code de routage erroné", "SIRET_ERR": "SIRET erroné",
           "JUSTIF_ABS": "Justificatif absent", "REF_CT_ABSENT": "Référence contractuelle absente"},
}
_WORDS = {
    "en": {
        "nav.label": "Console", "nav.dashboard": "Dashboard", "nav.invoices": "Invoices", "nav.flows": "Flows",
        "nav.deposit": "Deposit", "nav.notifications": "Notifications", "nav.logout": "Log out",
        "nav.language": "Language", "who.operator": "operator {name}",
        "login.title": "Log in", "login.name": "User name", "login.password": "Password", "login.submit": "Log in",
        "login.refused": "Unknown user name or wrong password.",
        "login.banned": "Too many failed logins from your address: try again later.",
        "login.hint": "Your account's name and password, the same as over SFTP.",
        "error.not_found": "Not found", "error.not_found.detail":
            "This page does not exist, or it is not yours to see.",
        "error.csrf": "Form refused", "error.csrf.detail":
            "This form is out of date or did not come from this console: go back, reload the page and try again.",
        "error.back": "Back to the dashboard",
        "period.from": "Issued from", "period.to": "to", "period.apply": "Show",
        "dashboard.title": "Dashboard", "dashboard.alerts": "Invoices to look at",
        "dashboard.no_alerts": "No rejected or suspended invoice.", "dashboard.counts": "Invoices by status",
        "dashboard.total": "All", "dashboard.none": "No invoice in this period.",
        "search.title": "Invoices", "search.number": "Invoice number", "search.status": "Status",
        "search.any": "any", "search.counterparty": "Counterparty (name or SIRET)",
        "search.amount_min": "Amount from", "search.amount_max": "Amount to", "search.submit": "Search",
        "search.csv": "Export as CSV", "search.none": "No invoice matches.",
        "search.invalid": "{field}: {value} ignored.", "search.previous": "Previous page",
        "search.next": "Next page", "search.page": "Page {n}",
        "col.number": "Number", "col.issued": "Issued", "col.seller": "Seller", "col.buyer": "Buyer",
        "col.amount": "Amount", "col.status": "Status", "col.verdict": "Verdict", "col.reason": "Reason",
        "col.count": "Invoices", "col.file": "File", "col.received": "Received", "col.state": "State",
        "col.rule": "Rule", "col.message": "Message", "col.location": "Location", "col.actor": "By",
        "col.kind": "Kind", "col.target": "Target", "col.events": "Events", "col.created": "Created",
        "verdict.accepted": "accepted", "verdict.rejected": "rejected",
        "invoice.title": "Invoice {number}", "invoice.data": "Invoice", "invoice.id": "Gateway id",
        "invoice.type": "Type code", "invoice.service": "Service", "invoice.engagement": "Engagement",
        "invoice.total": "Total", "invoice.recipient": "Recipient account", "invoice.flow": "Flow",
        "invoice.errors": "Why it was rejected", "invoice.history": "Status history",
        "invoice.no_history": "No status: the invoice was rejected at integration.",
        "invoice.files": "Files", "invoice.document": "The invoice as delivered",
        "invoice.document_sent": "The invoice as sent", "invoice.ack": "The flow's acknowledgement",
        "invoice.report": "The flow's integration report", "invoice.status_file": "Status return {name}",
        "answer.title": "Answer this invoice", "answer.status": "New status",
        "answer.reason": "Reason", "answer.reason_none": "none",
        "answer.reason_required": "A reason (code or comment) is required for: {statuses}.",
        "answer.comment": "Comment for the supplier", "answer.mandate": "Mandate number (MANDATEE)",
        "answer.submit": "Set the status", "answer.refused": "Refused: {detail}",
        "answer.unknown": "Unknown status {value}.",
        "flows.title": "Flows", "flows.none": "No flow yet.", "flow.title": "Flow {name}",
        "flow.id": "Flow id", "flow.name": "File", "flow.size": "Size (bytes)", "flow.channel": "Channel",
        "flow.received": "Received", "flow.finished": "Processed", "flow.kind": "Contents",
        "flow.waiting": "Being processed: this page refreshes by itself until the report is written.",
        "flow.errors": "Why the flow was refused", "flow.invoices": "Invoices",
        "flow.counts": "{invoices} invoice(s): {accepted} accepted, {rejected} rejected",
        "flow.ack": "Acknowledgement (XML)", "flow.report": "Integration report (XML)",
        "flow.timeline": "Timeline",
        "deposit.title": "Deposit a flow", "deposit.file": "Flow file (XML, PDF, zip or tar.gz)",
        "deposit.submit": "Send", "deposit.refused": "Not taken: {detail}",
        "deposit.hint": "The file goes through the same checks as over SFTP or the API; its page then shows "
                        "the report as soon as it is written.",
        "account_only": "Operators have no flows to deposit nor notifications: log in with an account.",
        "notify.title": "Notifications", "notify.none": "No subscription.", "notify.remove": "Remove",
        "notify.add": "Add a subscription", "notify.kind": "Channel", "notify.webhook": "Webhook (URL)",
        "notify.email": "E-mail address", "notify.target": "URL or address",
        "notify.secret": "Webhook secret (left empty: the gateway makes one)",
        "notify.events": "Events", "notify.submit": "Add", "notify.refused": "Refused: {detail}",
        "notify.made": "Subscription {id} added.",
        "notify.secret_once": "Its secret, shown this once (requests are signed with it):",
        "notify.removed": "Subscription {id} removed.",
        "event.flow.finished": "a flow of mine is processed", "event.invoice.status": "an invoice's status changes",
    },
    "fr": {
        "nav.label": "Console", "nav.dashboard": "Tableau de bord", "nav.invoices": "Factures", "nav.flows": "Flux",
        "nav.deposit": "Déposer", "nav.notifications": "Notifications", "nav.logout": "Se déconnecter",
        "nav.language": "Langue", "who.operator": "opérateur {name}",
        "login.title": "Connexion", "login.name": "Identifiant", "login.password": "Mot de passe",
        "login.submit": "Se connecter", "login.refused": "Identifiant inconnu ou mot de passe erroné.",
        "login.banned": "Trop d'échecs de connexion depuis votre adresse : réessayez plus tard.",
        "login.hint": "L'identifiant et le mot de passe de votre compte, les mêmes qu'en SFTP.",
        "error.not_found": "Introuvable", "error.not_found.detail":
            "Cette page n'existe pas, ou elle ne vous est pas accessible.",
        "error.csrf": "Formulaire refusé", "error.csrf.detail":
            "Ce formulaire est périmé ou ne vient pas de cette console : revenez en arrière, rechargez la page "
            "et recommencez.",
        "error.back": "Retour au tableau de bord",
        "period.from": "Émises du", "period.to": "au", "period.apply": "Afficher",
        "dashboard.title": "Tableau de bord", "dashboard.alerts": "Factures à traiter",
        "dashboard.no_alerts": "Aucune facture rejetée ni suspendue.", "dashboard.counts": "Factures par statut",
        "dashboard.total": "Toutes", "dashboard.none": "Aucune facture sur cette période.",
        "search.title": "Factures", "search.number": "Numéro de facture", "search.status": "Statut",
        "search.any": "tous", "search.counterparty": "Tiers (nom ou SIRET)",
        "search.amount_min": "Montant de", "search.amount_max": "Montant à", "search.submit": "Rechercher",
        "search.csv": "Exporter en CSV", "search.none": "Aucune facture ne correspond.",
        "search.invalid": "{field} : {value} ignoré.", "search.previous": "Page précédente",
        "search.next": "Page suivante", "search.page": "Page {n}",
        "col.number": "Numéro", "col.issued": "Émise le", "col.seller": "Fournisseur", "col.buyer": "Destinataire",
        "col.amount": "Montant", "col.status": "Statut", "col.verdict": "Verdict", "col.reason": "Motif",
        "col.count": "Factures", "col.file": "Fichier", "col.received": "Reçu le", "col.state": "État",
        "col.rule": "Règle", "col.message": "Message", "col.location": "Emplacement", "col.actor": "Par",
        "col.kind": "Type", "col.target": "Cible", "col.events": "Événements", "col.created": "Créée le",
        "verdict.accepted": "acceptée", "verdict.rejected": "rejetée",
        "invoice.title": "Facture {number}", "invoice.data": "Facture", "invoice.id": "Identifiant passerelle",
        "invoice.type": "Code type", "invoice.service": "Service", "invoice.engagement": "Engagement",
        "invoice.total": "Montant total", "invoice.recipient": "Compte destinataire", "invoice.flow": "Flux",
        "invoice.errors": "Motifs du rejet", "invoice.history": "Historique des statuts",
        "invoice.no_history": "Aucun statut : la facture a été rejetée à l'intégration.",
        "invoice.files": "Fichiers", "invoice.document": "La facture telle que transmise",
        "invoice.document_sent": "La facture telle qu'envoyée", "invoice.ack": "L'accusé de réception du flux",
        "invoice.report": "Le compte rendu d'intégration du flux", "invoice.status_file": "Retour de statut {name}",
        "answer.title": "Traiter cette facture", "answer.status": "Nouveau statut",
        "answer.reason": "Motif", "answer.reason_none": "aucun",
        "answer.reason_required": "Un motif (code ou commentaire) est requis pour : {statuses}.",
        "answer.comment": "Commentaire pour le fournisseur", "answer.mandate": "Numéro de mandat (MANDATEE)",
        "answer.submit": "Enregistrer le statut", "answer.refused": "Refusé : {detail}",
        "answer.unknown": "Statut inconnu {value}.",
        "flows.title": "Flux", "flows.none": "Aucun flux pour l'instant.", "flow.title": "Flux {name}",
        "flow.id": "Identifiant du flux", "flow.name": "Fichier", "flow.size": "Taille (octets)",
        "flow.channel": "Canal", "flow.received": "Reçu le", "flow.finished": "Traité le", "flow.kind": "Contenu",
        "flow.waiting": "En traitement : cette page se met à jour d'elle-même jusqu'au compte rendu.",
        "flow.errors": "Motifs du refus du flux", "flow.invoices": "Factures",
        "flow.counts": "{invoices} facture(s) : {accepted} acceptée(s), {rejected} rejetée(s)",
        "flow.ack": "Accusé de réception (XML)", "flow.report": "Compte rendu d'intégration (XML)",
        "flow.timeline": "Chronologie",
        "deposit.title": "Déposer un flux", "deposit.file": "Fichier du flux (XML, PDF, zip ou tar.gz)",
        "deposit.submit": "Envoyer", "deposit.refused": "Non pris en charge : {detail}",
        "deposit.hint": "Le fichier passe par les mêmes contrôles qu'en SFTP ou par l'API ; sa page montre "
                        "ensuite le compte rendu dès qu'il est écrit.",
        "account_only": "Un opérateur ne dépose pas de flux et ne reçoit pas de notifications : connectez-vous "
                        "avec un compte.",
        "notify.title": "Notifications", "notify.none": "Aucun abonnement.", "notify.remove": "Supprimer",
        "notify.add": "Ajouter un abonnement", "notify.kind": "Canal", "notify.webhook": "Webhook (URL)",
        "notify.email": "Adresse électronique", "notify.target": "URL ou adresse",
        "notify.secret": "Secret du webhook (vide : la passerelle en crée un)",
        "notify.events": "Événements", "notify.submit": "Ajouter", "notify.refused": "Refusé : {detail}",
        "notify.made": "Abonnement {id} ajouté.",
        "notify.secret_once": "Son secret, affiché cette seule fois (les requêtes sont signées avec) :",
        "notify.removed": "Abonnement {id} supprimé.",
        "event.flow.finished": "un de mes flux est traité", "event.invoice.status": "le statut d'une facture change",
    },
}


def choose(request: Request) -> str:
    """The page's language: ?lang=, else the cookie, else the best of Accept-Language, else English."""
    for asked in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if asked in LANGUAGES:
            return asked
    ranked = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, weight = part.strip().partition(";q=")
        try:
            ranked.append((float(weight or 1), tag.split("-")[0].lower()))
        except ValueError:
            continue
    return next((tag for _q, tag in sorted(ranked, key=lambda r: -r[0]) if tag in LANGUAGES), "en")


class Catalogue:
    """The words of one language: t("key", name=...) in templates."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **values: object) -> str:
        return _WORDS[self.lang][key].format(**values) if values else _WORDS[self.lang][key]

    def status(self, code: str | None) -> str:
        return _STATUSES[self.lang][code]

    def state(self, state: str) -> str:
        return _STATES[self.lang][state]

    def reason(self, code: str | None) -> str | None:
        return _REASONS[self.lang].get(code) if code else None
