-- The Developer Mesh schema, in the shapes of the real migrations (developer-mesh-contract.md section 4),
-- trimmed to the tables the runbook touches. pgvector is not available here, so vectors are real[].
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS amcheck;
-- amcheck's functions are superuser-only until granted: the suite's integrity checks run as the application's
-- monitoring role (checks/test_integrity.py). Read-only: they take AccessShareLock and change nothing.
GRANT EXECUTE ON FUNCTION bt_index_check(regclass, boolean) TO mcp_user;
GRANT EXECUTE ON FUNCTION verify_heapam(regclass, boolean, boolean, text, bigint, bigint) TO mcp_user;
CREATE SCHEMA IF NOT EXISTS mcp AUTHORIZATION mcp_user;
SET search_path = mcp, public;

CREATE TABLE IF NOT EXISTS mcp.schema_migrations (
    version bigint PRIMARY KEY,
    dirty boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS mcp.api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    user_id uuid,
    key_hash varchar(255) UNIQUE NOT NULL,      -- sha256 hex of the key
    key_prefix varchar(10) NOT NULL,
    name varchar(255) NOT NULL,
    key_type varchar(50) DEFAULT 'user',
    role varchar(50) DEFAULT 'user',
    scopes text[],
    rate_limit int DEFAULT 1000,
    rate_window varchar(10) DEFAULT '1h',
    is_active boolean DEFAULT true,             -- revocation sets this to false; there is no revoked_at
    last_used_at timestamp,
    usage_count bigint DEFAULT 0,
    metadata jsonb,
    parent_key_id uuid REFERENCES mcp.api_keys(id),
    allowed_services text[],
    created_at timestamp DEFAULT now(),
    updated_at timestamp DEFAULT now(),
    expires_at timestamp,
    rotated_from uuid,
    rotated_at timestamp,
    CONSTRAINT api_keys_expiry CHECK (expires_at IS NULL OR expires_at > created_at)
);

CREATE TABLE IF NOT EXISTS mcp.contexts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    agent_id uuid,
    model_id uuid,
    type varchar(50) NOT NULL,
    status varchar(50) DEFAULT 'active',
    metadata jsonb DEFAULT '{}',
    token_count int DEFAULT 0,
    max_tokens int DEFAULT 100000,
    compression_enabled boolean DEFAULT true,
    compression_ratio float,
    created_at timestamp DEFAULT now(),
    updated_at timestamp DEFAULT now(),
    expires_at timestamp
);
CREATE INDEX IF NOT EXISTS idx_contexts_tenant ON mcp.contexts (tenant_id);
CREATE INDEX IF NOT EXISTS idx_contexts_agent ON mcp.contexts (agent_id);

CREATE TABLE IF NOT EXISTS mcp.context_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    context_id uuid NOT NULL REFERENCES mcp.contexts(id) ON DELETE CASCADE,
    type varchar(50) NOT NULL,
    role varchar(50) NOT NULL,
    content text NOT NULL,
    metadata jsonb,
    token_count int DEFAULT 0,
    sequence_number int NOT NULL,
    is_compressed boolean DEFAULT false,
    created_at timestamp DEFAULT now(),
    UNIQUE (context_id, sequence_number)
);

CREATE TABLE IF NOT EXISTS mcp.embeddings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    context_id uuid REFERENCES mcp.contexts(id) ON DELETE CASCADE,
    content_index int NOT NULL DEFAULT 0,
    chunk_index int NOT NULL DEFAULT 0,
    content text NOT NULL,
    content_hash varchar(64) NOT NULL,
    model_id uuid NOT NULL,
    model_provider varchar(50) NOT NULL,
    model_name varchar(100) NOT NULL,
    model_dimensions int NOT NULL,
    embedding real[],
    metadata jsonb DEFAULT '{}',
    content_type varchar(50) DEFAULT 'text',
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    expires_at timestamp,
    UNIQUE (tenant_id, content_hash, model_id)
);
CREATE INDEX IF NOT EXISTS idx_embeddings_context ON mcp.embeddings (context_id);

CREATE TABLE IF NOT EXISTS mcp.webhook_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id varchar(255) UNIQUE NOT NULL,
    tool_id varchar(255) NOT NULL,
    event_type varchar(100) NOT NULL,
    payload jsonb NOT NULL,
    processed_at timestamp NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS mcp.webhook_dlq (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id varchar(255) NOT NULL,
    event_type varchar(100) NOT NULL,
    payload jsonb NOT NULL,
    error_message text NOT NULL,
    retry_count int DEFAULT 0,
    last_retry_at timestamp,
    created_at timestamp DEFAULT now(),
    status varchar(20) DEFAULT 'pending' CHECK (status IN ('pending','retrying','failed','resolved')),
    metadata jsonb
);

ALTER TABLE mcp.schema_migrations OWNER TO mcp_user;
ALTER TABLE mcp.api_keys OWNER TO mcp_user;
ALTER TABLE mcp.contexts OWNER TO mcp_user;
ALTER TABLE mcp.context_items OWNER TO mcp_user;
ALTER TABLE mcp.embeddings OWNER TO mcp_user;
ALTER TABLE mcp.webhook_events OWNER TO mcp_user;
ALTER TABLE mcp.webhook_dlq OWNER TO mcp_user;
