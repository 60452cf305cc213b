-- Realistic seed data: 10,000 contexts across 5 tenants, 3 items each, one 128-dimension embedding each,
-- and a handful of API keys (none expiring within 30 days). Deterministic (setseed) so reseeding is repeatable.
SELECT setseed(0.42);

INSERT INTO mcp.schema_migrations (version, dirty) VALUES (28, false) ON CONFLICT DO NOTHING;

INSERT INTO mcp.contexts (tenant_id, agent_id, model_id, type, status, metadata, token_count, max_tokens,
                          created_at, updated_at)
SELECT ('00000000-0000-4000-8000-00000000000' || (1 + g % 5))::uuid,
       gen_random_uuid(), gen_random_uuid(),
       (ARRAY['conversation', 'task', 'workflow', 'document'])[1 + g % 4],
       CASE WHEN g % 17 = 0 THEN 'archived' ELSE 'active' END,
       jsonb_build_object('name', 'context ' || g, 'source', 'seed', 'labels', jsonb_build_array('ops', g % 7)),
       (random() * 4000)::int, 100000,
       now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval
FROM generate_series(1, 10000) AS g;

INSERT INTO mcp.context_items (context_id, type, role, content, metadata, token_count, sequence_number)
SELECT c.id, 'message', (ARRAY['user', 'assistant', 'system'])[1 + s],
       'Seeded message ' || s || ' of context ' || c.id || ': ' || repeat('lorem ipsum ', 5 + s * 3),
       jsonb_build_object('seq', s), 20 + s * 10, s
FROM mcp.contexts c CROSS JOIN generate_series(0, 2) AS s;

INSERT INTO mcp.embeddings (tenant_id, context_id, content, content_hash, model_id, model_provider, model_name,
                            model_dimensions, embedding)
SELECT c.tenant_id, c.id, 'embedding of ' || c.id, encode(digest(c.id::text, 'sha256'), 'hex'),
       '00000000-0000-4000-9000-000000000001', 'bedrock', 'titan-embed-text-v2', 128,
       ARRAY(SELECT random()::real FROM generate_series(1, 128) WHERE c.id IS NOT NULL)
FROM mcp.contexts c;

INSERT INTO mcp.api_keys (tenant_id, key_hash, key_prefix, name, key_type, role, scopes, expires_at)
SELECT ('00000000-0000-4000-8000-00000000000' || (1 + k.g % 5))::uuid,
       encode(digest('seed-key-' || k.g || '-' || gen_random_uuid(), 'sha256'), 'hex'),
       'devmesh_' || k.g, k.name, k.key_type, k.role, ARRAY['read', 'write'],
       CASE WHEN k.days IS NULL THEN NULL ELSE now() + (k.days || ' days')::interval END
FROM (VALUES (1, 'admin-console', 'admin', 'admin', 365),
             (2, 'ci-e2e', 'service', 'service', 90),
             (3, 'edge-mcp-gateway', 'gateway', 'service', NULL),
             (4, 'agent-alpha', 'agent', 'user', 180),
             (5, 'readonly-dashboard', 'user', 'readonly', 45)) AS k(g, name, key_type, role, days);
