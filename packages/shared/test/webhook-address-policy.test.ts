import { expect } from "chai";
import { nonPublicRange, parseWebhookAllowlist, webhookAddressPolicy } from "../src/webhook-address-policy.js";

// Pure classification only: no test here (or anywhere) sends a packet to a non-loopback address.
describe("webhook-address-policy", () => {
  describe("nonPublicRange", () => {
    const table: Array<[string, string | null]> = [
      // IPv4 special-purpose ranges
      ["0.0.0.0", "unspecified"],
      ["0.1.2.3", "this-network"],
      ["10.0.0.1", "private"],
      ["10.255.255.255", "private"],
      ["100.64.0.1", "carrier-grade NAT"],
      ["100.127.255.254", "carrier-grade NAT"],
      ["127.0.0.1", "loopback"],
      ["127.255.0.9", "loopback"],
      ["169.254.169.254", "link-local"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["192.0.0.8", "IETF protocol assignment"],
      ["192.0.2.1", "documentation"],
      ["192.88.99.1", "6to4 relay anycast"],
      ["192.168.1.1", "private"],
      ["198.18.0.1", "benchmarking"],
      ["198.19.255.255", "benchmarking"],
      ["198.51.100.7", "documentation"],
      ["203.0.113.7", "documentation"],
      ["224.0.0.1", "multicast"],
      ["239.255.255.250", "multicast"],
      ["240.0.0.1", "reserved"],
      ["255.255.255.255", "broadcast"],
      // IPv4 public, including the neighbours of the ranges above
      ["8.8.8.8", null],
      ["1.1.1.1", null],
      ["100.63.255.255", null],
      ["100.128.0.0", null],
      ["172.15.255.255", null],
      ["172.32.0.0", null],
      ["192.169.0.1", null],
      ["198.20.0.1", null],
      ["223.255.255.255", null],
      // IPv6
      ["::", "unspecified"],
      ["::1", "loopback"],
      ["0:0:0:0:0:0:0:1", "loopback"],
      ["fe80::1", "link-local"],
      ["fe80::1%eth0", "link-local"],
      ["febf::1", "link-local"],
      ["fec0::1", "site-local"],
      ["fc00::1", "unique local"],
      ["fd12:3456::1", "unique local"],
      ["ff02::1", "multicast"],
      ["2001:db8::1", "documentation"],
      ["3fff::1", "documentation"],
      ["2001::1", "IETF protocol assignment"],
      ["100::1", "discard-only"],
      ["64:ff9b:1::1", "local-use NAT64"],
      ["::7f00:1", "reserved"],
      ["4000::1", "reserved"],
      ["2606:4700:4700::1111", null],
      ["2a00:1450:4001::1", null],
      // IPv6 forms that carry an IPv4 address are judged by it
      ["::ffff:127.0.0.1", "loopback, IPv4-mapped"],
      ["::ffff:7f00:1", "loopback, IPv4-mapped"],
      ["::ffff:10.0.0.1", "private, IPv4-mapped"],
      ["::ffff:8.8.8.8", null],
      ["64:ff9b::127.0.0.1", "loopback, NAT64"],
      ["64:ff9b::c0a8:101", "private, NAT64"],
      ["64:ff9b::808:808", null],
      ["2002:7f00:1::", "loopback, 6to4"],
      ["2002:a9fe:a9fe::1", "link-local, 6to4"],
      ["2002:808:808::1", null],
      // Not an address at all
      ["localhost", "not an IP address"],
      ["2130706433", "not an IP address"],
    ];
    for (const [address, expected] of table) {
      it(`${address} → ${expected ?? "public"}`, () => {
        expect(nonPublicRange(address)).to.equal(expected);
      });
    }
  });

  describe("parseWebhookAllowlist", () => {
    it("normalizes names, addresses and ranges", () => {
      expect(
        parseWebhookAllowlist(
          " Hooks.Example.com , *.internal.example,127.0.0.1, ::1,[::1]/128, 10.0.0.0/8,fd00::/8, api.example:8443,host.example.",
        ),
      ).to.deep.equal([
        "hooks.example.com",
        "*.internal.example",
        "127.0.0.1",
        "::1",
        "::1",
        "10.0.0.0/8",
        "fd00::/8",
        "api.example:8443",
        "host.example",
      ]);
      expect(parseWebhookAllowlist("")).to.deep.equal([]);
    });

    it("names the first entry it cannot read", () => {
      const bad: Array<[string, RegExp]> = [
        ["10.0.0.0/33", /entry "10\.0\.0\.0\/33" is not a CIDR range/],
        ["::1/129", /entry "::1\/129" is not a CIDR range/],
        ["example.com/8", /entry "example\.com\/8" is not a CIDR range/],
        ["hooks.example.com,exa mple.com", /entry "exa mple\.com" is not a host name, IP address or CIDR range/],
        ["http://example.com", /entry "http:\/\/example\.com" is not a CIDR range/],
        ["*", /entry "\*" is not a host name/],
        ["127.1", /entry "127\.1" is an IPv4 address in an unusual form: write 127\.0\.0\.1/],
      ];
      for (const [text, pattern] of bad) expect(() => parseWebhookAllowlist(text), text).to.throw(pattern);
    });
  });

  describe("webhookAddressPolicy", () => {
    it("with no list, allows public addresses only and trusts no name", () => {
      const policy = webhookAddressPolicy([]);
      expect(policy.refusal("93.184.216.34")).to.equal(null);
      expect(policy.refusal("127.0.0.1")).to.equal("loopback");
      expect(policy.refusal("::ffff:127.0.0.1")).to.equal("loopback, IPv4-mapped");
      expect(policy.trustsHost("localhost")).to.equal(false);
    });

    it("an address or range entry allows connecting there whatever the name, IPv4-mapped forms included", () => {
      const policy = webhookAddressPolicy(["127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8"]);
      for (const allowed of ["127.0.0.1", "::ffff:127.0.0.1", "::1", "10.9.8.7", "::ffff:10.9.8.7", "fd00::5"]) {
        expect(policy.refusal(allowed), allowed).to.equal(null);
      }
      expect(policy.refusal("127.0.0.2")).to.equal("loopback");
      expect(policy.refusal("192.168.1.1")).to.equal("private");
      expect(policy.refusal("fc00::1")).to.equal("unique local");
      expect(policy.trustsHost("localhost"), "addresses do not make names trusted").to.equal(false);
    });

    it("a host-name entry trusts that name (and *.domain its subdomains), with its port when one is given", () => {
      const policy = webhookAddressPolicy(["hooks.internal", "*.corp.example", "api.example:8443"]);
      expect(policy.trustsHost("hooks.internal")).to.equal(true);
      expect(policy.trustsHost("HOOKS.internal.", "")).to.equal(true);
      expect(policy.trustsHost("hooks.internal", "9000")).to.equal(true);
      expect(policy.trustsHost("a.corp.example")).to.equal(true);
      expect(policy.trustsHost("a.b.corp.example")).to.equal(true);
      expect(policy.trustsHost("corp.example"), "the wildcard needs a subdomain").to.equal(false);
      expect(policy.trustsHost("evilcorp.example")).to.equal(false);
      expect(policy.trustsHost("api.example", "8443")).to.equal(true);
      expect(policy.trustsHost("api.example", "")).to.equal(false);
      expect(policy.trustsHost("hooks.internal.evil")).to.equal(false);
      expect(policy.refusal("10.0.0.1"), "a trusted name does not open its addresses to other names").to.equal(
        "private",
      );
    });

    it("is compiled once per list", () => {
      const list = ["127.0.0.1"];
      expect(webhookAddressPolicy(list)).to.equal(webhookAddressPolicy(list));
    });
  });
});
