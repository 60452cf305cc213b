#!/bin/bash
# The runbook's Morning Checklist (Daily Operations), copied from ../shared/runbook/operations-runbook.md,
# adapted only in hosts and credentials (sandbox ports, the sandbox's Redis password and database user).
# Used by bench/morning_checklist.py to compare against `pytest checks -m daily`. Needs jq, bc, redis-cli, psql.

echo "=== Developer Mesh Daily Operations Checklist ==="
echo "Date: $(date)"

# 1. Check system health
echo -n "1. System Health Check... "
if curl -s http://localhost:${MESH_EDGE_PORT:-8080}/health | jq -r '.status' | grep -q "healthy"; then
    echo "✓ PASS"
else
    echo "✗ FAIL - Investigate immediately"
fi

# 2. Check REST API health
echo -n "2. REST API Health... "
if curl -s http://localhost:${MESH_API_PORT:-8081}/health | jq -r '.status' | grep -q "healthy"; then
    echo "✓ PASS"
else
    echo "✗ FAIL - Check REST API status"
fi

# 3. Check Redis connection
echo -n "3. Redis Connection... "
if REDISCLI_AUTH="$MESH_REDIS_PASSWORD" redis-cli -h 127.0.0.1 -p ${MESH_REDIS_PORT:-6379} ping | grep -q "PONG"; then
    echo "✓ PASS"
else
    echo "✗ FAIL - Check Redis status"
fi

# 4. Check disk space
echo -n "4. Disk Space... "
DISK_USAGE=$(df -h / | awk 'NR==2 {print $5}' | sed 's/%//')
if [ $DISK_USAGE -lt 80 ]; then
    echo "✓ PASS (${DISK_USAGE}% used)"
else
    echo "✗ WARNING - Disk usage at ${DISK_USAGE}%"
fi

# 5. Check error rates
echo -n "5. Error Rate (last hour)... "
ERROR_RATE=$(curl -s http://localhost:${MESH_PROM_PORT:-9090}/api/v1/query?query='rate(http_requests_total{status=~"5.."}[1h])' | jq -r '.data.result[0].value[1]')
if (( $(echo "$ERROR_RATE < 0.01" | bc -l) )); then
    echo "✓ PASS (${ERROR_RATE})"
else
    echo "✗ WARNING - Error rate: ${ERROR_RATE}"
fi

# 6. Check API key expirations
echo "6. API Key Expirations:"
PGPASSWORD="$MESH_PG_PASSWORD" psql -h localhost -p ${MESH_PG_PORT:-5432} -U mcp_user -d mcp -c "
    SELECT name, expires_at 
    FROM api_keys 
    WHERE expires_at < NOW() + INTERVAL '7 days' 
    AND revoked_at IS NULL
    ORDER BY expires_at;
"

echo "=== Checklist Complete ==="
