import { describe, expect, test } from "bun:test";
import { UserError } from "../../src/errors.ts";
import {
  canonicalImageUrl,
  KNOWN_REGISTRIES,
  parseImageReference,
  registryHostOf,
  registryProbeReference,
  type ImageReference,
} from "../../src/registry/reference.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

function hub(
  repository: string,
  tag: string | null = "latest",
  digest: string | null = null,
): ImageReference {
  return { registry: "docker.io", apiHost: "registry-1.docker.io", scheme: "https", repository, tag, digest };
}

describe("parseImageReference", () => {
  const accepted: [string, ImageReference, string][] = [
    [
      "docker://python:3.11-slim",
      hub("library/python", "3.11-slim"),
      "docker://docker.io/library/python:3.11-slim",
    ],
    ["docker://alpine", hub("library/alpine"), "docker://docker.io/library/alpine:latest"],
    ["python:3.11-slim", hub("library/python", "3.11-slim"), "docker://docker.io/library/python:3.11-slim"],
    ["library/alpine:latest", hub("library/alpine"), "docker://docker.io/library/alpine:latest"],
    ["myorg/myimage:v1", hub("myorg/myimage", "v1"), "docker://docker.io/myorg/myimage:v1"],
    [
      "docker.io/library/python:3.11-slim",
      hub("library/python", "3.11-slim"),
      "docker://docker.io/library/python:3.11-slim",
    ],
    [
      "docker://index.docker.io/library/ubuntu:24.04",
      hub("library/ubuntu", "24.04"),
      "docker://docker.io/library/ubuntu:24.04",
    ],
    ["docker.io/python", hub("library/python"), "docker://docker.io/library/python:latest"],
    ["  DOCKER://alpine  ", hub("library/alpine"), "docker://docker.io/library/alpine:latest"],
    [
      "oci://ghcr.io/org/img:tag",
      {
        registry: "ghcr.io",
        apiHost: "ghcr.io",
        scheme: "https",
        repository: "org/img",
        tag: "tag",
        digest: null,
      },
      "docker://ghcr.io/org/img:tag",
    ],
    [
      "docker://127.0.0.1:5000/probe/bb:oci",
      {
        registry: "127.0.0.1:5000",
        apiHost: "127.0.0.1:5000",
        scheme: "http",
        repository: "probe/bb",
        tag: "oci",
        digest: null,
      },
      "docker://127.0.0.1:5000/probe/bb:oci",
    ],
    [
      "localhost:5000/x",
      {
        registry: "localhost:5000",
        apiHost: "localhost:5000",
        scheme: "http",
        repository: "x",
        tag: "latest",
        digest: null,
      },
      "docker://localhost:5000/x:latest",
    ],
    [
      "localhost/x:1",
      {
        registry: "localhost",
        apiHost: "localhost",
        scheme: "http",
        repository: "x",
        tag: "1",
        digest: null,
      },
      "docker://localhost/x:1",
    ],
    [
      `ghcr.io/org/img@${DIGEST}`,
      {
        registry: "ghcr.io",
        apiHost: "ghcr.io",
        scheme: "https",
        repository: "org/img",
        tag: null,
        digest: DIGEST,
      },
      `docker://ghcr.io/org/img@${DIGEST}`,
    ],
    [
      `docker://alpine:3.20@${DIGEST}`,
      hub("library/alpine", "3.20", DIGEST),
      `docker://docker.io/library/alpine:3.20@${DIGEST}`,
    ],
    [
      "Registry.GitLab.com/group/sub/project:main",
      {
        registry: "registry.gitlab.com",
        apiHost: "registry.gitlab.com",
        scheme: "https",
        repository: "group/sub/project",
        tag: "main",
        digest: null,
      },
      "docker://registry.gitlab.com/group/sub/project:main",
    ],
    [
      "[::1]:5000/a/b_c__d-e.f:T_1.x-y",
      {
        registry: "[::1]:5000",
        apiHost: "[::1]:5000",
        scheme: "http",
        repository: "a/b_c__d-e.f",
        tag: "T_1.x-y",
        digest: null,
      },
      "docker://[::1]:5000/a/b_c__d-e.f:T_1.x-y",
    ],
    [
      "127.1.2.3:80/x",
      {
        registry: "127.1.2.3:80",
        apiHost: "127.1.2.3:80",
        scheme: "http",
        repository: "x",
        tag: "latest",
        digest: null,
      },
      "docker://127.1.2.3:80/x:latest",
    ],
    [
      "10.0.0.1:5000/x",
      {
        registry: "10.0.0.1:5000",
        apiHost: "10.0.0.1:5000",
        scheme: "https",
        repository: "x",
        tag: "latest",
        digest: null,
      },
      "docker://10.0.0.1:5000/x:latest",
    ],
  ];

  for (const [input, expected, canonical] of accepted) {
    test(`accepts ${JSON.stringify(input)}`, () => {
      const ref = parseImageReference(input);
      expect(ref).toEqual(expected);
      expect(canonicalImageUrl(ref)).toBe(canonical);
      // The canonical form parses back to the same reference.
      expect(parseImageReference(canonical)).toEqual(expected);
    });
  }

  const rejected: [string, RegExp][] = [
    ["", /empty/],
    ["   ", /empty/],
    ["docker://", /names no image/],
    ["python 3.11", /whitespace/],
    ["docker://Python:3.11", /lower-case.*'library\/python'|lower-case.*'python'/],
    ["ghcr.io/MyOrg/img", /lower-case: use 'myorg\/img'/],
    ["ghcr.io/org/img@sha256:abc", /Invalid digest.*sha256:<64/],
    [`ghcr.io/org/img@md5:${"a".repeat(32)}`, /Invalid digest/],
    [`ghcr.io/org/img@sha256:${"AB".repeat(32)}`, /Invalid digest/],
    ["python:", /Invalid tag ''/],
    ["python:-x", /Invalid tag '-x'/],
    [`python:${"a".repeat(129)}`, /Invalid tag/],
    ["http://ghcr.io/org/img", /Unsupported scheme 'http:\/\/'/],
    ["ghcr.io//img", /Invalid repository name/],
    ["ghcr.io/org/img/", /Invalid repository name/],
    ["ghcr.io/org/im$g", /Invalid repository name/],
    ["docker://ghcr.io", /looks like a registry host/],
    ["bad_host.io:5000/x", /Invalid registry host/],
    [`ghcr.io/${"a".repeat(250)}`, /longer than 255/],
  ];

  for (const [input, message] of rejected) {
    test(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`, () => {
      let error: unknown;
      try {
        parseImageReference(input);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(message);
    });
  }

  test("errors show the accepted forms", () => {
    expect(() => parseImageReference("python 3")).toThrow(/docker:\/\/python:3.11-slim/);
  });
});

describe("registryHostOf", () => {
  const cases: [string, string][] = [
    ["docker://ghcr.io", "ghcr.io"],
    ["ghcr.io", "ghcr.io"],
    ["GHCR.IO", "ghcr.io"],
    ["oci://quay.io/x", "quay.io"],
    ["docker://python:3.11-slim", "docker.io"],
    ["python:3.11", "docker.io"],
    ["alpine", "docker.io"],
    ["library/alpine:latest", "docker.io"],
    [`alpine@${DIGEST}`, "docker.io"],
    ["docker.io", "docker.io"],
    ["index.docker.io", "docker.io"],
    ["https://index.docker.io/v1/", "docker.io"],
    ["https://registry.gitlab.com", "registry.gitlab.com"],
    ["127.0.0.1:5000", "127.0.0.1:5000"],
    ["docker://127.0.0.1:5000/probe/bb:oci", "127.0.0.1:5000"],
    ["localhost:5000", "localhost:5000"],
    ["localhost", "localhost"],
    ["us.gcr.io/project/image", "us.gcr.io"],
  ];
  for (const [input, host] of cases) {
    test(`${JSON.stringify(input)} → ${host}`, () => {
      expect(registryHostOf(input)).toBe(host);
    });
  }

  test("rejects empty and unsupported input with a UserError", () => {
    expect(() => registryHostOf("")).toThrow(UserError);
    expect(() => registryHostOf("docker://")).toThrow(UserError);
    expect(() => registryHostOf("ftp://x.io")).toThrow(UserError);
  });
});

describe("KNOWN_REGISTRIES", () => {
  test("covers the registries people use, with https token pages", () => {
    for (const host of [
      "docker.io",
      "ghcr.io",
      "registry.gitlab.com",
      "gcr.io",
      "us.gcr.io",
      "eu.gcr.io",
      "asia.gcr.io",
      "quay.io",
    ]) {
      const known = KNOWN_REGISTRIES[host];
      expect(known?.tokenPage).toStartWith("https://");
      expect(known?.name).toBeTruthy();
    }
  });

  test("is keyed by what registryHostOf returns", () => {
    expect(KNOWN_REGISTRIES[registryHostOf("docker://python:3.11")]).toBeDefined();
    expect(KNOWN_REGISTRIES[registryHostOf("https://index.docker.io/v1/")]).toBeDefined();
  });
});

describe("registryProbeReference", () => {
  const cases: [string, string, string][] = [
    ["ghcr.io", "ghcr.io", "library/probe"],
    ["docker://ghcr.io", "ghcr.io", "library/probe"],
    ["docker://ghcr.io/", "ghcr.io", "library/probe"],
    ["https://index.docker.io/v1/", "docker.io", "library/probe"],
    ["docker.io", "docker.io", "library/probe"],
    ["ghcr.io/org/img:tag", "ghcr.io", "org/img"],
    ["docker://python:3.11", "docker.io", "library/python"],
    ["127.0.0.1:5000/probe/bb", "127.0.0.1:5000", "probe/bb"],
    ["localhost:5000", "localhost:5000", "library/probe"],
  ];
  for (const [input, registry, repository] of cases) {
    test(`${JSON.stringify(input)} → ${registry}/${repository}`, () => {
      expect(registryProbeReference(input)).toMatchObject({ registry, repository });
    });
  }
});
