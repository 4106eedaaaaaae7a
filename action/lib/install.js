'use strict';
// Finds regcache, or installs it: the release binary of this action's own
// version where the action's repository publishes one, verified against
// its published sha256, else `cargo install --locked` from the action's
// own checkout.
//
// Release assets, under the tag v<version> (the version in the action's
// Cargo.toml):
//   regcache-<target>          the binary
//   regcache-<target>.sha256   `sha256sum` output for it
// with <target> x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
// x86_64-apple-darwin or aarch64-apple-darwin.
// REGCACHE_RELEASE_URL replaces https://github.com/<repo>/releases/download
// (a mirror, or GitHub Enterprise).

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { spawnSync } = require('child_process');

const core = require('./core');

function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function actionPath() {
  const dir = process.env.GITHUB_ACTION_PATH;
  if (!dir) throw new Error('GITHUB_ACTION_PATH is not set: not running as a GitHub Actions step?');
  // The sub-actions live one directory below the checkout's root.
  return fs.existsSync(path.join(dir, 'Cargo.toml')) ? dir : path.dirname(dir);
}

function actionVersion(checkout) {
  const toml = fs.readFileSync(path.join(checkout, 'Cargo.toml'), 'utf8');
  const match = toml.match(/^version\s*=\s*"([^"]+)"/m);
  if (!match) throw new Error(`${checkout}/Cargo.toml: no version`);
  return match[1];
}

function target() {
  const arch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch];
  const os = { linux: 'unknown-linux-musl', darwin: 'apple-darwin' }[process.platform];
  return arch && os ? `${arch}-${os}` : null;
}

function releaseBase(version) {
  const override = process.env.REGCACHE_RELEASE_URL;
  if (override) return override.replace(/\/+$/, '');
  const repo = process.env.GITHUB_ACTION_REPOSITORY;
  if (!repo) return null;
  return `https://github.com/${repo}/releases/download/v${version}`;
}

// Plain HTTP is for a mirror on this machine only: anything that crosses
// a network must be https.
function client(url) {
  const u = new URL(url);
  if (u.protocol === 'https:') return https;
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  if (u.protocol === 'http:' && loopback) return http;
  throw new Error(`${url}: only https downloads (plain http on loopback) are allowed`);
}

// GET, following GitHub's redirects to its object store; resolves with the
// body as a Buffer.
function download(url, redirects = 5) {
  return new Promise((resolve, reject) => {
    const request = client(url).get(url, { headers: { 'User-Agent': 'regcache-action' } }, (res) => {
      const { statusCode, headers } = res;
      if (statusCode >= 300 && statusCode < 400 && headers.location && redirects > 0) {
        res.resume();
        resolve(download(new URL(headers.location, url).toString(), redirects - 1));
        return;
      }
      if (statusCode !== 200) {
        res.resume();
        reject(new Error(`${url}: HTTP ${statusCode}`));
        return;
      }
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    request.setTimeout(60000, () => request.destroy(new Error(`${url}: timed out`)));
    request.on('error', reject);
  });
}

async function fromRelease(version, dest) {
  const t = target();
  const base = releaseBase(version);
  if (!t || !base) {
    throw new Error(t ? 'no release location (GITHUB_ACTION_REPOSITORY is not set)' : `no release build for ${process.platform}/${process.arch}`);
  }
  const asset = `regcache-${t}`;
  const [binary, sums] = await Promise.all([
    download(`${base}/${asset}`),
    download(`${base}/${asset}.sha256`),
  ]);
  const expected = sums.toString('utf8').trim().split(/\s+/)[0].toLowerCase();
  const actual = crypto.createHash('sha256').update(binary).digest('hex');
  if (!/^[0-9a-f]{64}$/.test(expected)) throw new Error(`${asset}.sha256: not a sha256 checksum`);
  if (actual !== expected) {
    // Not a missing release but a tampered or corrupt one: never run it,
    // and do not quietly build something else instead.
    const err = new Error(`${asset}: sha256 ${actual} does not match the published ${expected}`);
    err.fatal = true;
    throw err;
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.writeFileSync(dest, binary, { mode: 0o755 });
  return dest;
}

function fromSource(checkout, root) {
  const cargo = onPath('cargo');
  if (!cargo) throw new Error('cargo is not on PATH (install Rust, e.g. with dtolnay/rust-toolchain)');
  core.info(`building regcache from ${checkout} with cargo install --locked`);
  const result = spawnSync(cargo, ['install', '--locked', '--path', checkout, '--root', root], {
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error(`cargo install failed (exit ${result.status})`);
  return path.join(root, 'bin', 'regcache');
}

// The regcache to run: the one on PATH, else one installed now.
async function regcache() {
  const found = onPath('regcache');
  if (found) return found;
  const checkout = actionPath();
  const version = actionVersion(checkout);
  const temp = process.env.RUNNER_TEMP || require('os').tmpdir();
  const dir = path.join(temp, `regcache-${version}`);
  try {
    const bin = await fromRelease(version, path.join(dir, 'bin', 'regcache'));
    core.info(`installed regcache ${version} from its release`);
    return bin;
  } catch (err) {
    if (err.fatal) throw err;
    core.info(`no release binary of regcache ${version}: ${err.message}`);
  }
  return fromSource(checkout, dir);
}

module.exports = { regcache };
