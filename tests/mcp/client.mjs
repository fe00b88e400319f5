// Drives `banger mcp` with the official MCP TypeScript SDK client
// (Client + StdioClientTransport), for tests/lua/e2e_mcp_spec.lua.
//
//   node client.mjs SCENARIO
//
// Environment: MCP_SDK_DIR (the npm prefix the SDK is installed in),
// BANGER_BIN, MCP_HOME (the test home: HOME and XDG dirs under it), MCP_ARGS
// (extra arguments after `mcp`, space-separated), MCP_REPORT. Appends one JSON
// line of facts per step to MCP_REPORT for the spec to check; any failed expectation
// throws (exit 1, message on stderr).
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { appendFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

const sdk = join(process.env.MCP_SDK_DIR, 'node_modules/@modelcontextprotocol/sdk/dist/esm');
const { Client } = await import(pathToFileURL(join(sdk, 'client/index.js')).href);
const { StdioClientTransport } = await import(pathToFileURL(join(sdk, 'client/stdio.js')).href);

const home = process.env.MCP_HOME;
const scenario = process.argv[2];

// Facts go to the file MCP_REPORT, read by the spec while this runs.
function report(step, facts) {
  appendFileSync(process.env.MCP_REPORT, JSON.stringify({ step, ...facts }) + '\n');
}

function expect(cond, what) {
  if (!cond) throw new Error('expectation failed: ' + what);
}

function text(result) {
  return result.content.filter(c => c.type === 'text').map(c => c.text).join('\n');
}

async function connect() {
  const transport = new StdioClientTransport({
    command: process.env.BANGER_BIN,
    args: ['mcp', ...(process.env.MCP_ARGS ? process.env.MCP_ARGS.split(' ') : [])],
    cwd: home,
    env: {
      HOME: home,
      XDG_CONFIG_HOME: home + '/.config',
      XDG_STATE_HOME: home + '/.local/state',
      XDG_CACHE_HOME: home + '/.cache',
      XDG_RUNTIME_DIR: home + '/run',
      PATH: process.env.PATH,
    },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr.on('data', d => { stderr += d; });
  const client = new Client({ name: 'banger-e2e', version: '1.0.0' });
  // anything on the server's stdout that is not a JSON-RPC message lands here
  const errors = [];
  client.onerror = e => errors.push(String(e));
  await client.connect(transport);
  return { client, transport, stderr: () => stderr, errors };
}

// A tool call that must succeed (isError unset).
async function call(client, name, args) {
  const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 600000 });
  expect(!r.isError, `${name} ${JSON.stringify(args)} succeeded: ${text(r)}`);
  return r;
}

async function sandboxes(client) {
  const r = await call(client, 'list', {});
  return r.structuredContent.sandboxes.map(s => s.name);
}

// Waits for a line on our stdin (the spec says when to go on).
function nextLine() {
  return new Promise(resolve => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', line => { rl.close(); resolve(line); });
    rl.once('close', () => resolve(null));
  });
}

if (scenario === 'session') {
  // initialize, tools, create, uname, files, truncation, fork, delete; the
  // session then ends by closing stdin, which must delete m1.
  const { client, transport, stderr, errors } = await connect();
  const version = client.getServerVersion();
  expect(version.name === 'banger', 'server name');
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map(t => [t.name, t]));
  report('tools', {
    names: tools.map(t => t.name).sort(),
    exec_required: byName.exec.inputSchema.required,
    write_required: byName.write_file.inputSchema.required,
    create_props: Object.keys(byName.create.inputSchema.properties).sort(),
    pid: transport.pid,
  });

  const progress = [];
  const created = await client.callTool({ name: 'create', arguments: { name: 'm1', image: 'tiny', memory: '256MiB' } },
    undefined, { timeout: 60000, resetTimeoutOnProgress: true, onprogress: p => progress.push(p) });
  expect(!created.isError, 'create succeeded: ' + text(created));
  report('create', { name: created.structuredContent.name, state: created.structuredContent.state,
    owner: created.structuredContent.owner, text: text(created), progress });

  const uname = await call(client, 'exec', { sandbox: 'm1', command: 'uname -a' });
  report('uname', { text: text(uname), exit_code: uname.structuredContent.exit_code,
    stdout: uname.structuredContent.stdout });

  const content = 'hello from the MCP client\nline two \u00e9\n';
  const w = await call(client, 'write_file', { sandbox: 'm1', path: '/root/note.txt', content, mode: '0600' });
  const r = await call(client, 'read_file', { sandbox: 'm1', path: '/root/note.txt' });
  const ls = await call(client, 'list_files', { sandbox: 'm1', path: '/root' });
  const entry = ls.structuredContent.entries.find(e => e.name === 'note.txt');
  report('files', { bytes: w.structuredContent.bytes, same: text(r) === content, read: text(r),
    entry_type: entry && entry.type, entry_size: entry && entry.size, entry_mode: entry && entry.mode });

  // binary content as base64: every byte value, checked by the guest's sha256sum
  const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
  const bw = await call(client, 'write_file', { sandbox: 'm1', path: '/root/bin.dat',
    content: bytes.toString('base64'), encoding: 'base64' });
  const sum = await call(client, 'exec', { sandbox: 'm1', argv: ['sha256sum', '/root/bin.dat'] });
  const want = createHash('sha256').update(bytes).digest('hex');
  report('binary', { bytes: bw.structuredContent.bytes, same: sum.structuredContent.stdout.startsWith(want),
    stdout: sum.structuredContent.stdout, want });

  // 200000 bytes of output against mcp.max_output (set by the spec)
  const big = await call(client, 'exec', { sandbox: 'm1', argv: ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do printf "%099d\\n" $i; i=$((i+1)); done; echo done >&2; exit 3'] });
  report('truncation', { text_length: text(big).length, exit_code: big.structuredContent.exit_code,
    stdout_cut: big.structuredContent.stdout_truncated_bytes, stderr: big.structuredContent.stderr,
    has_marker: /\[\.\.\. \d+ bytes truncated \.\.\.\]/.test(big.structuredContent.stdout),
    tail: big.structuredContent.stdout.slice(-20) });

  // failures are tool results with isError, not protocol errors
  const missing = await client.callTool({ name: 'read_file', arguments: { sandbox: 'm1', path: '/nonexistent' } });
  const unknown = await client.callTool({ name: 'exec', arguments: { sandbox: 'nosuch', command: 'true' } });
  const invalid = await client.callTool({ name: 'exec', arguments: { sandbox: 'm1' } });
  let protocolError = null;
  try {
    await client.callTool({ name: 'no_such_tool', arguments: {} });
  } catch (e) {
    protocolError = e.code;
  }
  report('errors', { missing: [missing.isError, text(missing)], unknown: [unknown.isError, text(unknown)],
    invalid: [invalid.isError, text(invalid)], protocol_error: protocolError });

  const fork = await call(client, 'fork', { sandbox: 'm1', name: 'f1' });
  const inFork = await call(client, 'exec', { sandbox: 'f1', argv: ['cat', '/root/note.txt'] });
  const listed = await sandboxes(client);
  const del = await call(client, 'delete', { sandbox: 'f1' });
  report('fork', { name: fork.structuredContent.name, owner: fork.structuredContent.owner, cat: inFork.structuredContent.stdout,
    listed, deleted: text(del), after: await sandboxes(client) });

  await client.ping();
  const t0 = Date.now();
  await client.close(); // ends stdin; the SDK sends SIGTERM after 2 s, SIGKILL after 4 s
  report('closed', { ms: Date.now() - t0, stderr: stderr(), transport_errors: errors });
} else if (scenario === 'orphan') {
  // run with --idle-timeout: creates m2 and forks f2, keeps m2 busy until
  // f2 went idle and was deleted, then waits: the spec kills the server
  // with SIGKILL
  const { client, transport, stderr } = await connect();
  const created = await call(client, 'create', { name: 'm2', image: 'tiny', memory: '256MiB' });
  await call(client, 'fork', { sandbox: 'm2', name: 'f2' });
  const t0 = Date.now();
  let listed = await sandboxes(client);
  let calls = 0;
  while (listed.includes('f2') && Date.now() - t0 < 300000) {
    await call(client, 'exec', { sandbox: 'm2', argv: ['true'] });
    calls++;
    listed = await sandboxes(client);
  }
  report('idle', { listed, calls, ms: Date.now() - t0, stderr: stderr() });
  report('orphan', { name: created.structuredContent.name, owner: created.structuredContent.owner, pid: transport.pid });
  await nextLine();
  process.exit(0);
} else if (scenario === 'reap') {
  // a new session: its start removes the dead session's sandboxes
  const { client, stderr } = await connect();
  report('reap', { sandboxes: await sandboxes(client), stderr: stderr() });
  await client.close();
} else {
  throw new Error('unknown scenario ' + scenario);
}
