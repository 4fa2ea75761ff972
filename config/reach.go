package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// What an agent may reach, and which of its environment variables a
// configuration may name. An admin token can change providers, so these
// rules are the agent's own and a configuration cannot loosen them.

// metadataAddrs are cloud instance-metadata endpoints outside the
// link-local ranges: AWS's IPv6 one, Alibaba's and Azure's wire server.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
	netip.MustParseAddr("168.63.129.16"),
}

// nat64 and sixToFour embed an IPv4 address in an IPv6 one.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// ForbiddenAddr says why an upstream may not be at ip, or "" when it may.
// Link-local addresses (where every cloud serves instance metadata and its
// credentials), known metadata addresses, unspecified, multicast and
// broadcast addresses are refused, whatever form they are written in
// (IPv4-mapped, NAT64, 6to4). Loopback and private networks stay allowed:
// local model servers live there.
func ForbiddenAddr(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() && (nat64.Contains(ip) || sixToFour.Contains(ip)) {
		b := ip.As16()
		var v4 [4]byte
		if nat64.Contains(ip) {
			copy(v4[:], b[12:])
		} else {
			copy(v4[:], b[2:6])
		}
		if why := ForbiddenAddr(netip.AddrFrom4(v4)); why != "" {
			return why + " (embedded in " + ip.String() + ")"
		}
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return ip.String() + " is a cloud metadata address"
		}
	}
	switch {
	case !ip.IsValid():
		return "not an address"
	case ip.IsLinkLocalUnicast():
		return ip.String() + " is link-local, where clouds serve instance metadata"
	case ip.IsUnspecified():
		return ip.String() + " is unspecified"
	case ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast():
		return ip.String() + " is multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "255.255.255.255 is broadcast"
	}
	return ""
}

// metadataHosts are host names that resolve to metadata services.
var metadataHosts = []string{
	"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
	"metadata.azure.internal", "metadata.tencentyun.com",
}

// numericHost matches hosts written as numbers in a form other than the
// dotted decimal Go parses (0xa9fea9fe, 2852039166, 0251.0376.0251.0376),
// which some resolvers read as addresses.
var numericHost = regexp.MustCompile(`^((0[xX][0-9a-fA-F]*|[0-9]+)\.){0,3}(0[xX][0-9a-fA-F]*|[0-9]+)$`)

// ForbiddenHost says why a base URL's host may not be an upstream, or ""
// when it may. Dialing checks the address a name resolves to as well, so
// a name that resolves to a forbidden address later is refused then.
func ForbiddenHost(host string) string {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if i := strings.IndexByte(h, '%'); i >= 0 {
		h = h[:i] // an IPv6 zone
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return ForbiddenAddr(ip)
	}
	for _, m := range metadataHosts {
		if h == m {
			return h + " is a cloud metadata service"
		}
	}
	if numericHost.MatchString(h) {
		return h + " is an address in an unusual form; write it as dotted decimal or a name"
	}
	return ""
}

// DefaultKeyEnvPattern is what a provider's api_key_env must match unless
// the agent is told otherwise: the names providers' keys go by.
const DefaultKeyEnvPattern = `_API_KEY$`

// agentEnvPrefixes are variables that hold cloud credentials: no
// configuration may name them, whatever pattern the agent allows, unless
// the name says it is a provider's API key (AZURE_OPENAI_API_KEY,
// GOOGLE_API_KEY). The agent's own variables (GANTRY_) are never named.
var agentEnvPrefixes = []string{
	"GANTRY_", "AWS_", "AZURE_", "ARM_", "GOOGLE_", "GCP_", "GCLOUD_", "CLOUDSDK_",
	"ALIBABA_CLOUD_", "ALICLOUD_", "OCI_", "KUBERNETES_", "VAULT_",
}

// ForbiddenEnv says why a configuration may not name the environment
// variable, or "" when it may as far as the agent's own secrets go.
func ForbiddenEnv(name string) string {
	upper := strings.ToUpper(name)
	for _, p := range agentEnvPrefixes {
		if strings.HasPrefix(upper, p) && (p == "GANTRY_" || !strings.HasSuffix(upper, "_API_KEY")) {
			return fmt.Sprintf("%s may hold the agent's own secrets or cloud credentials (%s*); name a variable that holds only the provider's key", name, p)
		}
	}
	return ""
}

// CheckKeyEnv checks a provider's api_key_env against the agent's rules:
// never one of its own secrets, and matching pattern.
func CheckKeyEnv(name string, pattern *regexp.Regexp) error {
	if why := ForbiddenEnv(name); why != "" {
		return fmt.Errorf("api_key_env %s", why)
	}
	if pattern != nil && !pattern.MatchString(name) {
		return fmt.Errorf("api_key_env %s does not match %s, the pattern this agent allows for provider keys", name, pattern)
	}
	return nil
}
