// Image references the way Docker reads them (distribution/reference), because that is what users and models
// type: `python:3.11-slim`, `docker://ghcr.io/org/img:tag`, `127.0.0.1:5000/x@sha256:…`. The Python original ran
// these through an HTTP URL parser, which read `docker://python:3.11-slim` as host `python` with port `3.11-slim`.
import { UserError } from "../errors.ts";

export interface ImageReference {
  /** host[:port], lower-case: "docker.io", "ghcr.io", "127.0.0.1:5000". */
  registry: string;
  /** Host that serves the /v2/ API: "registry-1.docker.io" for docker.io, else the registry. */
  apiHost: string;
  /** http only for loopback hosts, like Docker's default insecure registries. */
  scheme: "https" | "http";
  /** "library/python" (single Docker Hub names get "library/"). */
  repository: string;
  /** "latest" when neither tag nor digest is given. */
  tag: string | null;
  digest: string | null;
}

export const DOCKER_HUB = "docker.io";
const DOCKER_HUB_API = "registry-1.docker.io";
const DOCKER_HUB_ALIASES = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "registry.hub.docker.com",
]);

/** Registries whose token page we know, keyed by host. */
export const KNOWN_REGISTRIES: Record<string, { tokenPage: string; name: string }> = {
  "docker.io": { tokenPage: "https://app.docker.com/settings/personal-access-tokens", name: "Docker Hub" },
  "ghcr.io": { tokenPage: "https://github.com/settings/tokens", name: "GitHub Container Registry" },
  "registry.gitlab.com": {
    tokenPage: "https://gitlab.com/-/user_settings/personal_access_tokens",
    name: "GitLab Container Registry",
  },
  "gcr.io": {
    tokenPage: "https://console.cloud.google.com/apis/credentials",
    name: "Google Container Registry",
  },
  "us.gcr.io": {
    tokenPage: "https://console.cloud.google.com/apis/credentials",
    name: "Google Container Registry",
  },
  "eu.gcr.io": {
    tokenPage: "https://console.cloud.google.com/apis/credentials",
    name: "Google Container Registry",
  },
  "asia.gcr.io": {
    tokenPage: "https://console.cloud.google.com/apis/credentials",
    name: "Google Container Registry",
  },
  "quay.io": {
    tokenPage: "https://docs.quay.io/glossary/robot-accounts.html",
    name: "Quay.io (robot account)",
  },
};

const FORMS =
  "Use docker://python:3.11-slim, docker://ghcr.io/org/image:tag, host:port/repository:tag or repository@sha256:<64 hex>";

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?$/;
const IPV6_DOMAIN = /^\[[0-9a-f:.]+\](?::[0-9]{1,5})?$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST_HEX: Record<string, number> = { sha256: 64, sha512: 128 };
const MAX_NAME_LENGTH = 255;

/** Docker's rule: the first path component is a registry host only if it has "." or ":" or is "localhost". */
function looksLikeHost(component: string): boolean {
  return (
    component.includes(".") ||
    component.includes(":") ||
    component === "localhost" ||
    component.startsWith("[")
  );
}

function normalizeHost(host: string, input: string): string {
  const lower = host.toLowerCase();
  if (!DOMAIN.test(lower) && !IPV6_DOMAIN.test(lower)) {
    throw new UserError(`Invalid registry host '${host}' in image reference '${input}'. ${FORMS}.`);
  }
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

function isLoopback(registry: string): boolean {
  const host = registry.startsWith("[")
    ? registry.slice(0, registry.indexOf("]") + 1)
    : registry.split(":")[0]!;
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function stripScheme(input: string, allowed: readonly string[]): string {
  const match = SCHEME.exec(input);
  if (!match) return input;
  const scheme = match[1]!.toLowerCase();
  if (!allowed.includes(scheme)) {
    throw new UserError(`Unsupported scheme '${match[1]}://' in '${input}'. ${FORMS}.`);
  }
  return input.slice(match[0].length);
}

function checkDigest(digest: string, input: string): string {
  const [algorithm, hex, ...extra] = digest.split(":");
  const length = algorithm ? DIGEST_HEX[algorithm] : undefined;
  if (
    extra.length > 0 ||
    length === undefined ||
    hex === undefined ||
    !new RegExp(`^[a-f0-9]{${length}}$`).test(hex)
  ) {
    throw new UserError(
      `Invalid digest '${digest}' in '${input}': a digest is sha256:<64 lower-case hex digits> (or sha512:<128>).`,
    );
  }
  return digest;
}

/** Parses an image reference in any of the forms people type; throws a UserError that shows the accepted forms. */
export function parseImageReference(input: string): ImageReference {
  const text = input.trim();
  if (!text) throw new UserError(`The image reference is empty. ${FORMS}.`);
  if (/\s/.test(text)) throw new UserError(`Image reference '${text}' contains whitespace. ${FORMS}.`);
  let rest = stripScheme(text, ["docker", "oci"]);
  if (!rest) throw new UserError(`Image reference '${text}' names no image. ${FORMS}.`);

  let digest: string | null = null;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = checkDigest(rest.slice(at + 1), text);
    rest = rest.slice(0, at);
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw new UserError(
        `Invalid tag '${tag}' in '${text}': tags are 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'.`,
      );
    }
  }

  const components = rest.split("/");
  let registry = DOCKER_HUB;
  if (components.length > 1 && looksLikeHost(components[0]!)) {
    registry = normalizeHost(components.shift()!, text);
  } else if (components.length === 1 && components[0]!.includes(".")) {
    throw new UserError(
      `'${text}' looks like a registry host, not an image: name the repository too, e.g. docker://${components[0]}/org/image:tag.`,
    );
  }
  for (const component of components) {
    if (PATH_COMPONENT.test(component)) continue;
    if (component && PATH_COMPONENT.test(component.toLowerCase())) {
      throw new UserError(
        `Repository names must be lower-case: use '${components.join("/").toLowerCase()}' instead of '${components.join("/")}' in '${text}'.`,
      );
    }
    throw new UserError(
      `Invalid repository name '${components.join("/")}' in '${text}': path components are lower-case letters and digits, separated by '.', '_', '__' or '-', joined by '/'. ${FORMS}.`,
    );
  }
  if (registry === DOCKER_HUB && components.length === 1) components.unshift("library");
  const repository = components.join("/");
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw new UserError(`Image name in '${text}' is longer than ${MAX_NAME_LENGTH} characters.`);
  }
  return {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
    scheme: isLoopback(registry) ? "http" : "https",
    repository,
    tag: tag ?? (digest ? null : "latest"),
    digest,
  };
}

/** The one spelling we send to backends and record: docker://<registry>/<repository>[:tag][@digest]. */
export function canonicalImageUrl(ref: ImageReference): string {
  const tag = ref.tag ? `:${ref.tag}` : "";
  const digest = ref.digest ? `@${ref.digest}` : "";
  return `docker://${ref.registry}/${ref.repository}${tag}${digest}`;
}

/**
 * The registry host of a registry URL or image reference: "docker://ghcr.io" → "ghcr.io", "oci://quay.io/x" →
 * "quay.io", "python:3.11" → "docker.io", "https://index.docker.io/v1/" → "docker.io".
 */
export function registryHostOf(input: string): string {
  const text = input.trim();
  const rest = stripScheme(text, ["docker", "oci", "https", "http"]);
  if (!rest || /\s/.test(rest)) {
    throw new UserError(
      `'${input}' is not a registry or image reference: use a host like ghcr.io or an image like docker://ghcr.io/org/image.`,
    );
  }
  const slash = rest.indexOf("/");
  const first = slash >= 0 ? rest.slice(0, slash) : rest;
  if (slash >= 0) return looksLikeHost(first) ? normalizeHost(first, text) : DOCKER_HUB;
  // A lone "name:tag" is an image on Docker Hub; a lone "host.tld", "host:port" with a dot, or localhost is a host.
  if (first.includes("@")) return DOCKER_HUB;
  const hostPart = first.startsWith("[") ? first : first.split(":")[0]!;
  const isHost = hostPart.includes(".") || hostPart === "localhost" || hostPart.startsWith("[");
  return isHost ? normalizeHost(first, text) : DOCKER_HUB;
}

/**
 * A reference to check credentials against, from either a registry ("ghcr.io", "docker://ghcr.io",
 * "https://index.docker.io/v1/") or an image ("ghcr.io/org/img:tag"). A bare registry gets the placeholder repository
 * "library/probe": token servers want some repository scope, and a pull scope on a missing repository still proves
 * the credentials.
 */
export function registryProbeReference(input: string): ImageReference {
  const registry = registryHostOf(input);
  try {
    const ref = parseImageReference(input);
    if (ref.registry === registry) return ref;
  } catch (error) {
    // Not an image ("ghcr.io", "https://…"): only the registry matters for a credential check.
    if (!(error instanceof UserError)) throw error;
  }
  return parseImageReference(`${registry}/library/probe`);
}
