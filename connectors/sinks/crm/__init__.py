"""Vendor CRMs and booking systems (Destination.CRM): one POST per CrmDelivery record.

One interface, `wire.CrmClient` (build the request for a record, classify the answer), with
one implementation per `crm_kind`:

    photography_crm  the generic photography-CRM webhook (DOMAIN.md): POST endpoint_url,
                     JSON payload (event_type, wedding_id, client_name "A & B", wedding_date,
                     ceremony_time, venue_name, guest_count, photographer_notes, updated_at),
                     ``Authorization: Bearer <api_key>``
    venue_booking    the venue booking system: POST endpoint_url, ``X-Venue-API-Key``; payload
                     booking_id, event_date, party_size, setup_time, ceremony_start,
                     reception_start, special_requirements, coordinator_notes, last_updated
    tave             a Tave-style API: POST {base}/api/v2/leads (a new inquiry: form_response)
                     or {base}/api/v2/jobs (an update, matched by external_id), ``X-Api-Key``
    honeybook        a HoneyBook-style API: POST {base}/v1/projects, Bearer
    light_blue,      generic JSON POST of the payload to endpoint_url with the record's
    custom           auth_scheme (custom also serves email-marketing platform triggers)

Tave's and HoneyBook's full APIs are private (partner access): these two clients follow the
providers' general public shape (REST + JSON, API key header / Bearer, 409 for a duplicate,
429 + Retry-After) rather than a verified reference; adjust `wire.py` when a partner spec is
at hand. {base} is the integration's endpoint URL, or the configured
``WEDSYNC_CRM_TAVE_BASE_URL`` / ``WEDSYNC_CRM_HONEYBOOK_BASE_URL`` when set.

Every request carries ``Idempotency-Key: <delivery id>`` (stable across retries). The secret
is the integration's `api_key` (credential store kind ``integration``); basic auth uses
settings["username"] with the api_key as password.

    config.py   CrmConfig (WEDSYNC_CRM_*)
    wire.py     pure: the clients, auth headers, classification tables
    sink.py     CrmSink and build(env)
    fake.py     CrmFake: the four provider shapes plus a generic route, on loopback
"""
