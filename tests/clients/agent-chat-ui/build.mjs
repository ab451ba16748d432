// Build LangChain's agent-chat-ui offline, from the copy that the create-agent-chat-app
// package (MIT, pinned in package.json) carries as its Next.js template.
//
// Run in a copy of this folder after `npm ci`: it copies the template's sources and configs
// here (never its package.json: this folder's pinned one is used), patches what needs the
// network or would hide build problems, and runs `next build` as a static export: the app's
// only page is rendered in the browser, so `out/` is the whole app, served by any static file
// server (tests/agent_chat_ui.py serves it from a thread of the test process).
//
// What is patched, each checked to have applied (a template that changed fails the build):
// - src/app/layout.tsx: `next/font/google` (Inter, downloaded from Google Fonts at build time)
//   is replaced by the system font stack (Tailwind's `font-sans`).
// - next.config.mjs: `output: "export"` (static files in out/), lint and type checks skipped
//   (the template's ESLint setup is not installed; the app is built as published, not
//   reviewed). Telemetry is off through the environment.
// NEXT_PUBLIC_ASSISTANT_ID is inlined at build time ("agent", this repository's graph). The
// server's URL is not (its port differs per run): the page is opened with `?apiUrl=...`,
// which the app reads before NEXT_PUBLIC_API_URL (its own setup form writes that parameter).
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const here = process.cwd();
const template = join(here, "node_modules", "create-agent-chat-app", "templates", "nextjs");
if (!existsSync(template)) {
  throw new Error(`${template} is missing: run \`npm ci\` first`);
}

const copied = ["src", "next.config.mjs", "postcss.config.mjs", "tsconfig.json", "components.json"];
for (const name of copied) {
  cpSync(join(template, name), join(here, name), { recursive: true });
}

function patch(path, replacements) {
  let text = readFileSync(path, "utf8");
  for (const [pattern, replacement] of replacements) {
    const next = text.replace(pattern, replacement);
    if (next === text) {
      throw new Error(`${path}: ${pattern} not found (the template changed)`);
    }
    text = next;
  }
  writeFileSync(path, text);
}

patch(join(here, "src", "app", "layout.tsx"), [
  [/import \{ Inter \} from "next\/font\/google";\n/, ""],
  [/const inter = Inter\(\{[^}]*\}\);\n/, ""],
  [/className=\{inter\.className\}/, 'className="font-sans"'],
]);

writeFileSync(
  join(here, "next.config.mjs"),
  `/** @type {import('next').NextConfig} */
const nextConfig = {
  eslint: { ignoreDuringBuilds: true },
  typescript: { ignoreBuildErrors: true },
  output: "export",
};

export default nextConfig;
`,
);

execFileSync(join(here, "node_modules", ".bin", "next"), ["build"], {
  cwd: here,
  stdio: "inherit",
  env: {
    ...process.env,
    NEXT_TELEMETRY_DISABLED: "1",
    NEXT_PUBLIC_ASSISTANT_ID: "agent",
  },
});

// The app's licence (MIT) goes with the built app.
cpSync(join(here, "node_modules", "create-agent-chat-app", "LICENSE"), join(here, "out", "LICENSE"));
