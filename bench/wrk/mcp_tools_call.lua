-- wrk script: tools/call over Streamable HTTP, stateless 2026-07-28 era, so no
-- session is needed: every request carries MCP-Protocol-Version, the SEP-2243
-- routing headers (Mcp-Method, Mcp-Name) and _meta in params. Each request has
-- a unique JSON-RPC id (thread number * 2^32 + counter).
--
--   wrk -t2 -c64 -d10s -s bench/wrk/mcp_tools_call.lua http://127.0.0.1:8080/mcp
--
-- Environment: MCP_TOOL (default echo), MCP_ARGS (default {"text":"hello"}),
-- MCP_PATH (default: the URL's path, else /mcp).
local tool = os.getenv("MCP_TOOL") or "echo"
local args = os.getenv("MCP_ARGS") or '{"text":"hello"}'

local meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",' ..
  '"io.modelcontextprotocol/clientCapabilities":{},' ..
  '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1.0.0"}}'
local pre  = '{"jsonrpc":"2.0","id":'
local post = ',"method":"tools/call","params":{"name":"' .. tool .. '","arguments":' .. args .. ',' .. meta .. '}}'

local threads = {}
local counter = 0
local base = 0
local bad, rpcerr = 0, 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(argv)
  base = (tonumber(tid) or 1) * 4294967296
  wrk.method = "POST"
  if os.getenv("MCP_PATH") then
    wrk.path = os.getenv("MCP_PATH")
  elseif wrk.path == nil or wrk.path == "/" or wrk.path == "" then
    wrk.path = "/mcp"
  end
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
  wrk.headers["Mcp-Method"] = "tools/call"
  wrk.headers["Mcp-Name"] = tool
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, pre .. string.format("%d", base + counter) .. post)
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  elseif body and string.find(body, '"error"', 1, true) then
    rpcerr = rpcerr + 1
  end
end

function done(summary, latency, requests)
  local b, e = 0, 0
  for _, t in ipairs(threads) do
    b = b + (tonumber(t:get("bad")) or 0)
    e = e + (tonumber(t:get("rpcerr")) or 0)
  end
  io.write(string.format("non-200: %d  JSON-RPC errors: %d\n", b, e))
  io.write(string.format("p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
