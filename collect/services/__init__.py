"""collect's services: functions that combine the store and the domain, called by the API, the app and the verbs."""
