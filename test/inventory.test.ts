import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Diagnostic } from '../harness/config/diagnostics.ts';
import { loadInventory, parseInventory } from '../harness/inventory/load.ts';
import { parseShard, planJobs, selectDevices } from '../harness/run/plan.ts';
import { UsageError } from '../harness/config/diagnostics.ts';

const FP = 'SHA256:' + 'A'.repeat(43);

/** Parse and return the diagnostics; fails the test if the text was accepted. */
/** The assertions these helpers use, from a subtest's `t`. */
type Test = Pick<typeof t, 'ok' | 'equal' | 'same' | 'match' | 'fail'>;

function problems(t: Test, text: string, env: NodeJS.ProcessEnv = {}): Diagnostic[] {
  try {
    parseInventory('devices.yaml', text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics;
    throw err;
  }
  t.fail('inventory was accepted but should have been rejected');
  return [];
}

function one(t: Test, text: string, expect: { line: number; col: number; message: RegExp; value?: RegExp; allowed?: RegExp; hint?: RegExp }, env: NodeJS.ProcessEnv = {}): void {
  const ds = problems(t, text, env);
  const d = ds.find((x) => expect.message.test(x.message));
  t.ok(d, `a diagnostic matching ${expect.message} (got: ${ds.map((x) => x.message).join(' | ')})`);
  if (!d) return;
  t.equal(d.file, 'devices.yaml');
  t.same({ line: d.line, col: d.col }, { line: expect.line, col: expect.col }, 'position');
  if (expect.value) t.match(d.value ?? '', expect.value, 'value');
  if (expect.allowed) t.match(d.allowed ?? '', expect.allowed, 'allowed');
  if (expect.hint) t.match(d.hint ?? '', expect.hint, 'hint');
}

const good = (extra = '', device = ''): string => `${extra}devices:
  - name: pi4
    transport: ssh
    host: 10.0.0.4
    identity_file: ~/.ssh/id_ed25519
    host_key: ${FP}
    model: Raspberry Pi 4 Model B
    ram_mb: 2048
    arch: armhf
${device}`;

t.test('a valid inventory loads with defaults, groups and ${ENV}', async (t) => {
  const inv = parseInventory(
    'devices.yaml',
    `defaults:
  user: pi
  timeouts: { connect: 5s }
groups:
  nightly: [pi4]
devices:
  - name: pi4
    transport: ssh
    host: \${PI4_HOST}
    port: \${PI4_PORT:-2222}
    identity_file: ~/.ssh/id_ed25519
    model: Raspberry Pi 4 Model B
    ram_mb: 2048
    arch: armhf
    tags: [rack-a]
    timeouts: { job: 20m }
  - name: cap-512
    transport: local
    cap_mb: 512
    ram_mb: 512
    arch: amd64
`,
    { PI4_HOST: '10.1.2.3' },
  );
  const pi4 = inv.devices[0]!;
  t.equal(pi4.transport, 'ssh');
  if (pi4.transport !== 'ssh') return;
  t.equal(pi4.host, '10.1.2.3');
  t.equal(pi4.port, 2222);
  t.equal(pi4.user, 'pi');
  t.same(pi4.timeouts, { connectMs: 5000, jobMs: 1_200_000, bootMs: 300_000 });
  t.same(pi4.source, { file: 'devices.yaml', line: 7, col: 5 });
  t.same(inv.groups, { nightly: ['pi4'] });
  const local = inv.devices[1]!;
  t.equal(local.transport === 'local' && local.capMb, 512);
  t.equal(local.model, 'local capped host');
});

t.test('ten kinds of bad input, each positioned with value and what is allowed', async (t) => {
  t.test('bad YAML, at the unclosed bracket', async (t) => one(t, 'devices:\n  - name: [unclosed\n', { line: 2, col: 11, message: /invalid YAML: `\[` .* never closed/, allowed: /`\]`/ }));
  t.test('empty file', async (t) => one(t, '\n# nothing\n', { line: 1, col: 1, message: /inventory is empty/, allowed: /devices/ }));
  t.test('duplicate names', async (t) =>
    one(t, good('', `  - name: pi4\n    transport: local\n    ram_mb: 512\n    arch: amd64\n`), { line: 10, col: 11, message: /duplicate device name `pi4` \(first defined at devices.yaml:2:11\)/ }));
  t.test('unknown key, with did-you-mean', async (t) =>
    one(t, good('', '    prot: 22\n'), { line: 10, col: 5, message: /unknown key `prot`/, allowed: /port/, hint: /did you mean `port`/ }));
  t.test('wrong type', async (t) =>
    one(t, good().replace('ram_mb: 2048', 'ram_mb: lots'), { line: 8, col: 13, message: /expected an integer/, value: /"lots"/, allowed: /integer from 128/ }));
  t.test('missing host', async (t) =>
    one(t, good().replace('    host: 10.0.0.4\n', ''), { line: 2, col: 5, message: /missing required key `host`/ }));
  t.test('bad port', async (t) =>
    one(t, good('', '    port: 70000\n'), { line: 10, col: 11, message: /out of range/, value: /70000/, allowed: /1 to 65535/ }));
  t.test('literal password, never echoed', async (t) => {
    const ds = problems(t, good('', '    password: hunter2\n'));
    const d = ds.find((x) => /literal password/.test(x.message));
    t.ok(d);
    t.same(d && { line: d.line, col: d.col }, { line: 10, col: 15 });
    t.match(d?.allowed ?? '', /password_env/);
    t.notMatch(JSON.stringify(ds), /hunter2/, 'the secret is not in any diagnostic');
  });
  t.test('unknown transport, with did-you-mean', async (t) =>
    one(t, good().replace('transport: ssh', 'transport: sssh'), { line: 3, col: 16, message: /unknown transport/, allowed: /ssh \| qemu \| local/, hint: /did you mean `ssh`/ }));
  t.test('unset environment variable', async (t) =>
    one(t, good().replace('10.0.0.4', '${PI4_HOST}'), { line: 4, col: 11, message: /PI4_HOST is not set/ }));
  t.test('bad host-key fingerprint', async (t) =>
    one(t, good().replace(FP, 'SHA256:short'), { line: 6, col: 15, message: /invalid value/, allowed: /SHA256:<43 base64/ }));
  t.test('bad duration', async (t) =>
    one(t, good('', '    timeouts: { job: soon }\n'), { line: 10, col: 22, message: /invalid duration/, value: /soon/ }));
  t.test('unknown group member', async (t) =>
    one(t, good('groups:\n  nightly: [pi5]\n'), { line: 2, col: 13, message: /unknown device/, value: /pi5/, allowed: /pi4/ }));
  t.test('unknown qemu profile', async (t) =>
    one(t, 'devices:\n  - name: q\n    transport: qemu\n    profile: pi9-1g\n', { line: 4, col: 14, message: /unknown QEMU profile/, allowed: /pi4b/ }));
});

t.test('a wheelhouse: found next to the inventory, checked, and its venv is the python', async (t) => {
  const dir = t.testdir({ wheels: { 'probe-1.0-py3-none-any.whl': 'zip' }, empty: {} });
  const file = join(dir, 'devices.yaml');
  const device = (wheelhouse: string, extra = ''): string =>
    `devices:\n  - name: q\n    transport: qemu\n    profile: pi3b-1g-arm64\n    wheelhouse: ${wheelhouse}\n${extra}`;
  writeFileSync(file, device('wheels'));
  const [q] = loadInventory(file).devices;
  t.equal(q?.transport === 'qemu' ? q.qemu.wheelhouse : null, join(dir, 'wheels'), 'relative to devices.yaml, not to the working folder');
  t.equal(q?.python, '/opt/pi-hil/venv/bin/python', 'the venv the wheels were installed into');
  writeFileSync(file, device('wheels', '    python: /usr/bin/python3\n'));
  t.equal(loadInventory(file).devices[0]?.python, '/usr/bin/python3', 'an explicit python wins');

  const rejected = (text: string): Diagnostic[] => {
    writeFileSync(file, text);
    try {
      loadInventory(file);
    } catch (e) {
      if (e instanceof ConfigError) return e.diagnostics;
      throw e;
    }
    t.fail('accepted');
    return [];
  };
  const [missing] = rejected(device('nowhere'));
  t.match(missing, { line: 5, col: 17, message: /no such folder/, value: /nowhere/, allowed: /\.whl/ });
  const [empty] = rejected(device('empty'));
  t.match(empty, { line: 5, col: 17, message: /no \.whl file/ });
  const [own] = rejected(device('wheels', '    image: disk.img\n    kernel: vmlinuz\n'));
  t.match(own, { line: 5, message: /not into your own image/ });
});

t.test('bad defaults are reported once, even when the first device does not use them', async (t) => {
  const ds = problems(
    t,
    `defaults:
  port: 99999
  agent: maybe
  host_key: SHA256:bogus
devices:
  - { name: l, transport: local, ram_mb: 512, arch: amd64 }
  - { name: s1, transport: ssh, host: a, identity_file: k, model: m, ram_mb: 512, arch: arm64 }
  - { name: s2, transport: ssh, host: b, identity_file: k, model: m, ram_mb: 512, arch: arm64 }
`,
  );
  t.same(
    ds.map((d) => [d.line, d.message]),
    [
      [2, 'out of range'],
      [3, 'expected true or false'],
      [4, 'invalid value'],
    ],
  );
});

t.test('a password typed where its variable name belongs is never echoed', async (t) => {
  const ds = problems(t, good('', '    password_env: s3cr3t-P@ss\n'));
  t.equal(ds.length, 1);
  t.match(ds[0]?.allowed ?? '', /NAME of an environment variable/);
  t.notMatch(JSON.stringify(ds), /s3cr3t/);
});

t.test('YAML syntax errors are reported at the mistake, not where the parser gave up', async (t) => {
  // The parser notices the unclosed `[` of line 5 only at 6:1.
  const unclosedBracket = `devices:
  - name: pi4
    transport: local
    ram_mb: 512
    tags: [rack-a, nightly
arch: amd64
`;
  const ds = problems(t, unclosedBracket);
  t.same(ds.map((d) => `${d.line}:${d.col}`), ['5:11'], 'one diagnostic, at the `[`');
  t.match(ds[0], { file: 'devices.yaml', message: /invalid YAML: `\[` \(a flow sequence\) opened here is never closed/, value: '"    tags: [rack-a, nightly"', allowed: 'a closing `]`', hint: /read on to 6:1/ });

  // Indented follow-on lines: the parser then also trips over `transport: local` as a
  // multi-line key; those are consequences of the same `[` and are not reported.
  const swallowed = `devices:
  - name: pi4
    tags: [rack-a, nightly
    transport: local
    ram_mb: 512
`;
  t.same(problems(t, swallowed).map((d) => `${d.line}:${d.col} ${d.message}`), ['3:11 invalid YAML: `[` (a flow sequence) opened here is never closed']);

  const unclosedQuote = `devices:
  - name: "pi4
    transport: local
`;
  t.same(problems(t, unclosedQuote).map((d) => `${d.line}:${d.col} ${d.message}`), ['2:11 invalid YAML: the quote " opened here is never closed']);

  const unclosedBrace = 'defaults: { transport: local, ram_mb: 512\ndevices:\n  - name: a\n';
  t.same(problems(t, unclosedBrace).map((d) => `${d.line}:${d.col}`), ['1:11']);

  // A mistake of its own after the unclosed bracket is still reported, where it is.
  const two = `devices:
  - name: pi4
    tags: [rack-a
  - { name: b, name: c }
`;
  t.same(problems(t, two).map((d) => `${d.line}:${d.col} ${d.message}`), [
    '3:11 invalid YAML: `[` (a flow sequence) opened here is never closed',
    '4:16 invalid YAML: Map keys must be unique',
  ]);
});

t.test('duplicate keys are positioned YAML errors', async (t) => {
  one(t, 'devices:\n  - { name: b, name: c }\n', { line: 2, col: 16, message: /invalid YAML: Map keys must be unique/ });
});

t.test('all problems are reported at once, in file order', async (t) => {
  const ds = problems(t, good('', '    port: 0\n    prot: 1\n    password: x\n').replace('ram_mb: 2048', 'ram_mb: 1'));
  t.same(
    ds.map((d) => `${d.line}:${d.col} ${d.message}`),
    ['8:13 out of range', '10:11 out of range', '11:5 unknown key `prot` in ssh device `pi4`', '12:15 a literal password is not allowed in the inventory'],
  );
  const err = new ConfigError(ds);
  t.match(err.message, /^devices\.yaml:\d+:\d+: /m);
});

t.test('a missing inventory file is a positioned config error', async (t) => {
  t.throws(() => loadInventory(join(t.testdir(), 'nope.yaml')), ConfigError);
});

t.test('loadInventory reads a file from disk', async (t) => {
  const file = join(t.testdir(), 'devices.yaml');
  writeFileSync(file, good());
  t.equal(loadInventory(file).devices.length, 1);
});

t.test('selection: --device, --tag (tags and groups), --shard', async (t) => {
  const inv = parseInventory(
    'devices.yaml',
    `groups: { nightly: [a, c] }
defaults: { transport: local, ram_mb: 512, arch: amd64 }
devices:
  - { name: a, tags: [x] }
  - { name: b, tags: [x] }
  - { name: c }
  - { name: d }
`,
    {},
  );
  const names = (sel: Partial<Parameters<typeof selectDevices>[1]>): string[] =>
    selectDevices(inv, { devices: [], tags: [], shard: null, ...sel }).map((d) => d.name);
  t.same(names({}), ['a', 'b', 'c', 'd']);
  t.same(names({ tags: ['x'] }), ['a', 'b']);
  t.same(names({ tags: ['nightly'] }), ['a', 'c']);
  t.same(names({ devices: ['d'] }), ['d']);
  // Rendezvous hashing on the names (test/shard.test.ts covers the split itself).
  t.same(names({ shard: parseShard('1/2') }), ['c']);
  t.same(names({ shard: parseShard('2/2') }), ['a', 'b', 'd']);
  t.throws(() => names({ devices: ['zz'] }), UsageError);
  t.throws(() => names({ tags: ['zz'] }), UsageError);
  const jobs = planJobs(inv, [{ name: 's1' }, { name: 's2' }], { devices: ['a'], tags: [], suites: ['s2'], shard: null });
  t.same(jobs.map((j) => j.id), ['s2.a']);
  t.throws(() => planJobs(inv, [{ name: 's1' }], { devices: [], tags: [], suites: ['nope'], shard: null }), UsageError);
});

t.test('bad shard specs name the option, the value and the form', async (t) => {
  for (const bad of ['0/2', '3/2', '1/0', 'x', '1-2', '']) {
    t.throws(() => parseShard(bad), { name: 'UsageError', message: /--shard[\s\S]*"i\/n"/ }, bad);
  }
  t.same(parseShard(' 2/4 '), { index: 2, count: 4 });
});

t.test('power blocks: each adapter loads with its defaults', async (t) => {
  const device = (power: string): unknown => {
    const inv = parseInventory('devices.yaml', good('', `    power:\n${power.replace(/^/gm, '      ')}\n`), { SWITCH: 'poe-1.lab' });
    const d = inv.devices[0];
    return d?.transport === 'ssh' ? d.power : undefined;
  };
  t.same(device('adapter: command\non: rack on {name}\noff: rack off {name}'), {
    adapter: 'command', on: 'rack on {name}', off: 'rack off {name}', cycle: null, status: null, delayMs: 2000, timeoutMs: 30_000,
  });
  t.same(device('adapter: uhubctl\nlocation: 1-1\nport: 2\ndelay: 5s'), { adapter: 'uhubctl', location: '1-1', port: 2, delayMs: 5000, timeoutMs: 30_000 });
  t.same(device('adapter: snmp-poe\nhost: ${SWITCH}\ncommunity_env: POE_COMMUNITY\nport: 7'), {
    adapter: 'snmp-poe', host: 'poe-1.lab', communityEnv: 'POE_COMMUNITY', group: 1, port: 7, delayMs: 2000, timeoutMs: 30_000,
  });
  t.same(device('adapter: http\nkind: tasmota\nhost: plug-3.lab'), {
    adapter: 'http', kind: 'tasmota', host: 'plug-3.lab', port: 80, pdu: null, outlet: null, user: 'admin', passwordEnv: null, delayMs: 2000, timeoutMs: 10_000,
  });
  t.same(device('adapter: http\nkind: pdudaemon\nhost: pdud.lab\npdu: pdu-a\noutlet: 4'), {
    adapter: 'http', kind: 'pdudaemon', host: 'pdud.lab', port: 16421, pdu: 'pdu-a', outlet: 4, user: 'admin', passwordEnv: null, delayMs: 5000, timeoutMs: 10_000,
  }, "PDUDaemon's own port and delay");
  t.equal((device('adapter: http\nkind: shelly\nhost: 10.0.0.9\npassword_env: SHELLY_PW') as { outlet: number }).outlet, 0, "Shelly's relay 0");
  const plain = parseInventory('devices.yaml', good(), {}).devices[0];
  t.equal(plain?.transport === 'ssh' ? plain.power : undefined, null, 'no block: null');
});

t.test('power blocks: every problem at its line:col, with what is allowed and a did-you-mean', async (t) => {
  const power = (block: string, extra = ''): string => good('', `    power:\n${block.replace(/^/gm, '      ')}\n${extra}`);
  // good() ends at line 9; `power:` is line 10 and the block starts on line 11, column 7.
  t.test('unknown adapter', async (t) =>
    one(t, power('adapter: uhubctrl\nlocation: 1-1\nport: 2'), { line: 11, col: 16, message: /unknown adapter/, value: /uhubctrl/, allowed: /command \| uhubctl \| snmp-poe \| http/, hint: /did you mean `uhubctl`/ }));
  t.test('missing adapter', async (t) =>
    one(t, power('location: 1-1\nport: 2'), { line: 11, col: 7, message: /missing required key `adapter`/, allowed: /command \| uhubctl/ }));
  t.test('a misspelled key of the adapter', async (t) =>
    one(t, power('adapter: uhubctl\nlocaton: 1-1\nport: 2'), { line: 12, col: 7, message: /unknown key `locaton` in `power` \(adapter uhubctl\)/, allowed: /adapter, delay, timeout, location, port/, hint: /did you mean `location`/ }));
  t.test("another adapter's key", async (t) =>
    one(t, power('adapter: uhubctl\nlocation: 1-1\nport: 2\nkind: shelly'), { line: 14, col: 7, message: /unknown key `kind` in `power` \(adapter uhubctl\)/ }));
  t.test('a missing required key', async (t) =>
    one(t, power('adapter: uhubctl\nport: 2'), { line: 11, col: 7, message: /missing required key `location`/, allowed: /1-1/ }));
  t.test('a bad hub location', async (t) =>
    one(t, power('adapter: uhubctl\nlocation: usb1\nport: 2'), { line: 12, col: 17, message: /invalid value/, value: /usb1/, allowed: /hub location/ }));
  t.test('a hub port out of range', async (t) =>
    one(t, power('adapter: uhubctl\nlocation: 1-1\nport: 0'), { line: 13, col: 13, message: /out of range/, allowed: /1 to 255/ }));
  t.test('an unknown placeholder, with did-you-mean', async (t) =>
    one(t, power('adapter: command\non: relay on {nmae}\noff: relay off {name}'), { line: 12, col: 11, message: /unknown placeholder \{nmae\}/, allowed: /\{name\}, \{host\}, \{port\}, \{user\}/, hint: /did you mean `\{name\}`/ }));
  t.test('a command adapter without off', async (t) =>
    one(t, power('adapter: command\non: relay on'), { line: 11, col: 7, message: /missing required key `off`/, allowed: /shell command/ }));
  t.test('a bad delay', async (t) =>
    one(t, power('adapter: uhubctl\nlocation: 1-1\nport: 2\ndelay: a while'), { line: 14, col: 14, message: /invalid duration/, value: /a while/ }));
  t.test('an unknown http kind, with did-you-mean', async (t) =>
    one(t, power('adapter: http\nkind: tasmotta\nhost: plug'), { line: 12, col: 13, message: /unknown kind/, allowed: /tasmota \| shelly \| pdudaemon/, hint: /did you mean `tasmota`/ }));
  t.test('a URL where the host belongs', async (t) =>
    one(t, power('adapter: http\nkind: shelly\nhost: http://plug/relay'), { line: 13, col: 13, message: /invalid value/, allowed: /without http:\/\// }));
  t.test('PDUDaemon without its PDU', async (t) =>
    one(t, power('adapter: http\nkind: pdudaemon\nhost: pdud\noutlet: 2'), { line: 11, col: 7, message: /missing required key `pdu`/ }));
  t.test('a pdu for a plug', async (t) =>
    one(t, power('adapter: http\nkind: tasmota\nhost: plug\npdu: pdu-a'), { line: 14, col: 12, message: /`pdu` is for kind: pdudaemon only/ }));
  t.test('not a mapping', async (t) =>
    one(t, good('', '    power: uhubctl\n'), { line: 10, col: 12, message: /`power` must be a mapping/, allowed: /adapter: command \| uhubctl/ }));
  t.test('a qemu device', async (t) =>
    one(t, 'devices:\n  - name: q\n    transport: qemu\n    profile: pi3b-1g-arm64\n    power: { adapter: uhubctl, location: 1-1, port: 2 }\n', { line: 5, col: 12, message: /a qemu device takes no `power:` block: its power is the VM/ }));
  t.test('a local device', async (t) =>
    one(t, 'devices:\n  - { name: l, transport: local, ram_mb: 512, arch: amd64, power: { adapter: uhubctl } }\n', { line: 2, col: 67, message: /a local device is this host/ }));
  t.test('in defaults', async (t) =>
    one(t, good('defaults:\n  power: { adapter: uhubctl, location: 1-1, port: 2 }\n'), { line: 2, col: 10, message: /`power` is per device, not a default/ }));
});

t.test('power blocks: secrets only through environment variables, never echoed', async (t) => {
  const power = (block: string): string => good('', `    power:\n${block.replace(/^/gm, '      ')}\n`);
  const literal = problems(t, power('adapter: snmp-poe\nhost: sw\ncommunity: pr1vate-c0mm\ncommunity_env: POE\nport: 1'));
  t.match(literal, [{ line: 13, col: 18, message: 'a literal community is not allowed in the inventory', value: '"(redacted)"', allowed: /community_env: NAME_OF_ENV_VAR/ }]);
  const typed = problems(t, power('adapter: snmp-poe\nhost: sw\ncommunity_env: pr1vate-c0mm!\nport: 1'));
  t.match(typed, [{ line: 13, col: 22, message: 'invalid value', value: '"(redacted)"', allowed: /NAME of an environment variable/ }]);
  const password = problems(t, power('adapter: http\nkind: shelly\nhost: plug\npassword: hunter2'));
  t.match(password, [{ line: 14, col: 17, message: 'a literal password is not allowed in the inventory', allowed: /password_env/ }]);
  const typedPassword = problems(t, power('adapter: http\nkind: shelly\nhost: plug\npassword_env: hunter2 and more'));
  t.match(typedPassword, [{ line: 14, col: 21, value: '"(redacted)"' }]);
  t.notMatch(JSON.stringify([literal, typed, password, typedPassword]), /pr1vate|hunter2/, 'no secret in any diagnostic');
});
