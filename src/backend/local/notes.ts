// Notes a run's result carries for the model: things it cannot see from the output alone. Today one: the sandbox
// had no network and the command's output reads like it wanted one, which otherwise looks like a broken mirror or
// a typo in a host name.

/** What resolvers, curl, wget (GNU and busybox), git, apt, pip, npm and language runtimes print without a network. */
const NO_NETWORK = new RegExp(
  [
    "could not resolve host",
    "temporary failure in name resolution",
    "temporary failure resolving",
    "name or service not known",
    "no address associated with hostname",
    "network is unreachable",
    "unable to resolve host",
    "unknown host",
    "bad address '",
    "getaddrinfo",
    "eai_again",
    "enotfound",
    "enetunreach",
    "failed to establish a new network connection",
    "nodename nor servname",
    "could not connect to server",
  ]
    .map((text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("|"),
  "i",
);

export const NO_NETWORK_NOTE =
  "The sandbox has no network (the local backend's default: loopback only), and the output looks like the command " +
  "needed one. Restart contree-mcp with --local-network host (or CONTREE_MCP_LOCAL_NETWORK=host) to share the " +
  "host's network, or bring what it needs in with files/upload.";

/** The notes for a finished run: empty when there is nothing to add. */
export function runNotes(network: "none" | "host", stdout: Uint8Array, stderr: Uint8Array): string[] {
  if (network !== "none") return [];
  const decoder = new TextDecoder();
  // The tail is where errors are; a bounded slice keeps a huge output cheap to scan.
  const text = `${decoder.decode(stderr.subarray(-65_536))}\n${decoder.decode(stdout.subarray(-16_384))}`;
  return NO_NETWORK.test(text) ? [NO_NETWORK_NOTE] : [];
}
