// k6 script: one session-era MCP scenario per iteration over Streamable HTTP:
// initialize, notifications/initialized, N tools/call, DELETE.
//
//   k6 run -e MCP_URL=http://127.0.0.1:8080/mcp -e CALLS=10 --vus 50 --duration 30s bench/k6/session.js
//
// k6 is AGPL-licensed: this is a script for operators who have it installed;
// erlmcp never depends on k6 and never ships it.
import http from 'k6/http';
import { check, fail } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const URL = __ENV.MCP_URL || 'http://127.0.0.1:8080/mcp';
const CALLS = parseInt(__ENV.CALLS || '10', 10);
const TOOL = __ENV.MCP_TOOL || 'echo';
const ARGS = JSON.parse(__ENV.MCP_ARGS || '{"text":"hello"}');
const VERSION = __ENV.MCP_VERSION || '2025-11-25';

const rpcErrors = new Counter('mcp_rpc_errors');
const callTime = new Trend('mcp_tools_call_duration', true);

export const options = {
  thresholds: {
    http_req_failed: ['rate<0.01'],
    mcp_rpc_errors: ['count<1'],
  },
};

const baseHeaders = {
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
};

// rpcResult extracts the JSON-RPC message from a JSON or SSE body.
function rpcMessage(res) {
  const ct = res.headers['Content-Type'] || '';
  if (ct.startsWith('text/event-stream')) {
    for (const line of res.body.split('\n')) {
      if (line.startsWith('data:')) {
        const m = JSON.parse(line.slice(5));
        if (m.id !== undefined && m.method === undefined) return m;
      }
    }
    return null;
  }
  return res.json();
}

export default function () {
  let id = 0;
  const init = http.post(URL, JSON.stringify({
    jsonrpc: '2.0', id: id++, method: 'initialize',
    params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'k6', version: '1.0.0' } },
  }), { headers: Object.assign({ 'Mcp-Method': 'initialize' }, baseHeaders), tags: { mcp: 'initialize' } });
  if (!check(init, { 'initialize 200': (r) => r.status === 200 })) fail(`initialize: HTTP ${init.status}`);
  const im = rpcMessage(init);
  const negotiated = (im && im.result && im.result.protocolVersion) || VERSION;
  const headers = Object.assign({ 'MCP-Protocol-Version': negotiated }, baseHeaders);
  const sid = init.headers['Mcp-Session-Id'];
  if (sid) headers['Mcp-Session-Id'] = sid;

  const note = http.post(URL, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    { headers: Object.assign({ 'Mcp-Method': 'notifications/initialized' }, headers), tags: { mcp: 'initialized' } });
  check(note, { 'initialized 202': (r) => r.status === 202 || r.status === 200 || r.status === 204 });

  const callHeaders = Object.assign({ 'Mcp-Method': 'tools/call', 'Mcp-Name': TOOL }, headers);
  for (let i = 0; i < CALLS; i++) {
    const res = http.post(URL, JSON.stringify({
      jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: TOOL, arguments: ARGS },
    }), { headers: callHeaders, tags: { mcp: 'tools/call' } });
    callTime.add(res.timings.duration);
    const m = res.status === 200 ? rpcMessage(res) : null;
    if (!check(res, { 'tools/call ok': () => m !== null && m.error === undefined })) rpcErrors.add(1);
  }

  if (sid) {
    const del = http.del(URL, null, { headers, tags: { mcp: 'delete' } });
    check(del, { 'delete 2xx/405': (r) => (r.status >= 200 && r.status < 300) || r.status === 405 });
  }
}
