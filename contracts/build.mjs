#!/usr/bin/env node
// Compiles the deployable contracts (contracts/src/*.sol) with the pinned solc-js and writes one artifact per
// contract to contracts/artifacts/<Name>.json (ABI, creation and runtime bytecode, compiler and settings).
// `--check` compiles the same way and fails when the committed artifacts differ, which proves that they are
// exactly what the committed sources produce. Settings mirror foundry.toml.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const solc = require(path.join(root, "node_modules", "solc"));
const srcDir = path.join(root, "contracts", "src");
const outDir = path.join(root, "contracts", "artifacts");

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "prague",
  metadata: { bytecodeHash: "ipfs" },
  remappings: ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

// Imports arrive as repository-relative paths (after remapping), so they resolve against the repository root.
function findImport(importPath) {
  const file = path.join(root, importPath);
  return fs.existsSync(file) ? { contents: fs.readFileSync(file, "utf8") } : { error: `not found: ${importPath}` };
}

function compile() {
  const deployables = fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort();
  const sources = {};
  for (const file of deployables) {
    const key = `contracts/src/${file}`;
    sources[key] = { content: fs.readFileSync(path.join(root, key), "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    for (const e of errors) process.stderr.write(e.formattedMessage + "\n");
    process.exitCode = 1;
    return null;
  }
  const artifacts = {};
  for (const file of deployables) {
    const name = path.basename(file, ".sol");
    const contract = output.contracts[`contracts/src/${file}`][name];
    if (!contract) continue;
    const { remappings, outputSelection, ...settings } = SETTINGS;
    artifacts[name] = JSON.stringify(
      {
        contractName: name,
        sourceName: `contracts/src/${file}`,
        compiler: { version: solc.version(), settings },
        abi: contract.abi,
        bytecode: "0x" + contract.evm.bytecode.object,
        deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
      },
      null,
      2,
    ) + "\n";
  }
  return artifacts;
}

const check = process.argv.includes("--check");
const artifacts = compile();
if (artifacts) {
  if (check) {
    const committed = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((f) => f.endsWith(".json")).sort() : [];
    const expected = Object.keys(artifacts).map((n) => `${n}.json`).sort();
    const problems = [];
    for (const f of new Set([...committed, ...expected])) {
      const name = path.basename(f, ".json");
      const onDisk = fs.existsSync(path.join(outDir, f)) ? fs.readFileSync(path.join(outDir, f), "utf8") : null;
      if (onDisk === null) problems.push(`${f}: missing (run: node contracts/build.mjs)`);
      else if (!(name in artifacts)) problems.push(`${f}: no source contracts/src/${name}.sol`);
      else if (onDisk !== artifacts[name]) problems.push(`${f}: differs from what the sources compile to`);
    }
    if (problems.length) {
      process.stderr.write(problems.join("\n") + "\n");
      process.exitCode = 1;
    } else {
      process.stdout.write(`${expected.length} artifacts match their sources (solc ${solc.version()})\n`);
    }
  } else {
    fs.mkdirSync(outDir, { recursive: true });
    for (const [name, text] of Object.entries(artifacts)) fs.writeFileSync(path.join(outDir, `${name}.json`), text);
    process.stdout.write(`wrote ${Object.keys(artifacts).length} artifacts to contracts/artifacts\n`);
  }
}
