#!/usr/bin/env node
// A CRI streaming exec client over WebSocket (kubelet's remotecommand protocol v4.channel.k8s.io, as containerd's
// streaming server serves it): connects to the URL that the CRI's Exec returned, collects stdout (channel 1),
// stderr (channel 2) and the final status (channel 3, a JSON Status), and prints them as one JSON object.
// Run in containerd's network namespace by test/helpers/cri.ts (streamExec).
import WebSocket from 'ws';

const url = process.argv[2].replace(/^http/, 'ws');
const out = { stdout: '', stderr: '', status: {} };
const ws = new WebSocket(url, ['v4.channel.k8s.io']);
const timer = setTimeout(() => {
  console.error('ws-exec: no end after 60 s');
  process.exit(2);
}, 60_000);
ws.on('message', (data) => {
  const buf = Buffer.from(data);
  if (buf.length === 0) return;
  const text = buf.subarray(1).toString('utf8');
  if (buf[0] === 1) out.stdout += text;
  else if (buf[0] === 2) out.stderr += text;
  else if (buf[0] === 3 && text) out.status = JSON.parse(text);
});
ws.on('error', (err) => {
  console.error(`ws-exec: ${err.message}`);
  process.exit(1);
});
ws.on('close', () => {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(out));
});
