-- The platform's ten source tables, as ../shared/DOMAIN.md lists them: the columns the
-- pipeline reads and no others (no `time_zone`: the platform stores wall-clock dates and
-- times and no zone), with the platform's types (uuid ids, jsonb, text[], date, time,
-- timestamptz). Tests, `make run` and the benchmarks create exactly this, so every path runs
-- on the real names and types. `streams/logic/contract.py` declares what the pipeline reads
-- from each table; `wedsync cdc` checks a live database against it at start.
--
-- REPLICA IDENTITY FULL: the pipeline compares old and new values (wedding_date,
-- completion_percentage, core_fields) and merges columns PostgreSQL leaves out of an update
-- (unchanged TOAST values) from the previous state.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE IF NOT EXISTS suppliers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_name text NOT NULL,
    email text,
    notification_preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS wedding_details (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    couple_id uuid NOT NULL,
    wedding_date date,
    bride_name text,
    groom_name text,
    ceremony_time time,
    reception_time time,
    setup_time time,
    venue_id uuid,
    venue_name text,
    guest_count integer,
    special_requests text,
    dietary_requirements text[],
    venue_notes text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS wedding_vendors (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    wedding_id uuid NOT NULL REFERENCES wedding_details (id) ON DELETE CASCADE,
    vendor_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    vendor_type text
);

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    supplier_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    endpoint_url text NOT NULL,
    secret_key text NOT NULL,
    subscribed_events text[] NOT NULL DEFAULT '{}',
    is_active boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS supplier_integrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    supplier_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    integration_type text NOT NULL,
    webhook_url text,
    api_key text,
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS venue_integrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    venue_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    webhook_url text,
    api_credentials jsonb NOT NULL DEFAULT '{}'::jsonb,
    notification_preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS email_integrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    supplier_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    platform_type text NOT NULL,
    api_key text,
    webhook_url text,
    trigger_settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS form_responses (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    supplier_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    couple_id uuid NOT NULL,
    client_name text,
    form_name text,
    question_count integer,
    submitted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS journey_progress (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    supplier_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
    couple_id uuid NOT NULL,
    client_name text,
    milestone_name text,
    completion_percentage numeric(5, 2) NOT NULL DEFAULT 0,
    completed_at timestamptz
);

CREATE TABLE IF NOT EXISTS core_fields (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    couple_id uuid NOT NULL UNIQUE,
    partner1_name text,
    partner2_name text,
    email text,
    phone text,
    guest_count integer,
    preferred_contact_time timetz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE suppliers REPLICA IDENTITY FULL;
ALTER TABLE wedding_details REPLICA IDENTITY FULL;
ALTER TABLE wedding_vendors REPLICA IDENTITY FULL;
ALTER TABLE webhook_endpoints REPLICA IDENTITY FULL;
ALTER TABLE supplier_integrations REPLICA IDENTITY FULL;
ALTER TABLE venue_integrations REPLICA IDENTITY FULL;
ALTER TABLE email_integrations REPLICA IDENTITY FULL;
ALTER TABLE form_responses REPLICA IDENTITY FULL;
ALTER TABLE journey_progress REPLICA IDENTITY FULL;
ALTER TABLE core_fields REPLICA IDENTITY FULL;
