package cache

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Reference is an image reference in docker's normalized form:
// DOMAIN/PATH[:TAG][@DIGEST], "busybox" being docker.io/library/busybox.
//
// It parses as github.com/distribution/reference's ParseNormalizedNamed
// does (its grammar, checked against it by a differential test), without
// the ten regular expressions that package compiles when a process starts:
// every kiln process (a container's monitor, each sandbox's init) paid
// for them, ~15% of its start-up.
type Reference struct {
	domain, path, tag string
	digest            digest.Digest
}

const (
	defaultDomain       = "docker.io"
	legacyDefaultDomain = "index.docker.io"
	officialRepoPrefix  = "library/"
	nameTotalLengthMax  = 255
)

// The errors distribution/reference returns, with its messages.
var (
	errReferenceInvalidFormat = errors.New("invalid reference format")
	errNameContainsUppercase  = errors.New("repository name must be lowercase")
	errNameEmpty              = errors.New("repository name must have at least one component")
	errNameTooLong            = fmt.Errorf("repository name must not be more than %v characters", nameTotalLengthMax)
)

// ParseReference parses a user's image reference, normalizing it as docker
// does: a name without a domain is on docker.io, and a one-component name
// there is under library/.
func ParseReference(s string) (Reference, error) {
	if len(s) == 64 && isLowerHex(s) {
		return Reference{}, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i >= 0 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return Reference{}, fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return parseReference(domain + "/" + remainder)
}

// splitDockerDomain is distribution/reference's: the domain is the first
// component when it looks like one (a dot, a port, localhost, capitals).
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok {
		return defaultDomain, officialRepoPrefix + name
	}
	switch {
	case first == "localhost", strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, remainder = first, rest
		if domain == legacyDefaultDomain {
			domain = defaultDomain
		}
	default:
		domain, remainder = defaultDomain, name
	}
	if domain == defaultDomain && !strings.ContainsRune(remainder, '/') {
		remainder = officialRepoPrefix + remainder
	}
	return domain, remainder
}

// parseReference is distribution/reference's Parse of
// [DOMAIN[:PORT]/]PATH[:TAG][@DIGEST] for a named reference.
func parseReference(s string) (Reference, error) {
	r, ok := matchReference(s)
	if !ok {
		if s == "" {
			return Reference{}, errNameEmpty
		}
		if _, ok := matchReference(strings.ToLower(s)); ok {
			return Reference{}, errNameContainsUppercase
		}
		return Reference{}, errReferenceInvalidFormat
	}
	if len(r.path) > nameTotalLengthMax {
		return Reference{}, errNameTooLong
	}
	if r.digest != "" {
		if _, err := digest.Parse(string(r.digest)); err != nil {
			return Reference{}, err
		}
	}
	return r, nil
}

// matchReference splits s as the grammar's anchored expression
// (name)(:tag)?(@digest)? and name as (domain/)?path would, the domain
// taken whenever it can be.
func matchReference(s string) (Reference, bool) {
	var r Reference
	name := s
	if i := strings.IndexByte(s, '@'); i >= 0 {
		name, r.digest = s[:i], digest.Digest(s[i+1:])
		if !isDigestPattern(string(r.digest)) {
			return r, false
		}
	}
	// A colon after the last slash starts the tag: a name has colons only
	// in its domain's port, which a slash follows.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, r.tag = name[:i], name[i+1:]
		if !isTag(r.tag) {
			return r, false
		}
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && isDomainAndPort(first) && isRemoteName(rest) {
		r.domain, r.path = first, rest
		return r, true
	}
	r.path = name
	return r, isRemoteName(name)
}

// isRemoteName: path components separated by slashes.
func isRemoteName(s string) bool {
	for _, c := range strings.Split(s, "/") {
		if !isPathComponent(c) {
			return false
		}
	}
	return true
}

// isPathComponent: [a-z0-9]+ runs joined by one of ".", "_", "__" or "-"+.
func isPathComponent(s string) bool {
	i := 0
	for {
		start := i
		for i < len(s) && (isLowerAlpha(s[i]) || isDigit(s[i])) {
			i++
		}
		if i == start {
			return false
		}
		if i == len(s) {
			return true
		}
		switch s[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(s) && s[i] == '_' {
				i++
			}
		case '-':
			for i < len(s) && s[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

// isDomainAndPort: a domain name or a bracketed IPv6 address, and maybe a port.
func isDomainAndPort(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 2 || strings.Trim(s[1:end], "0123456789abcdefABCDEF:") != "" {
			return false
		}
		host, port = "", s[end+1:]
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" && (port[0] != ':' || len(port) < 2 || strings.Trim(port[1:], "0123456789") != "") {
		return false
	}
	if host == "" {
		return strings.HasPrefix(s, "[")
	}
	for _, c := range strings.Split(host, ".") {
		if c == "" || c[0] == '-' || c[len(c)-1] == '-' {
			return false
		}
		for i := 0; i < len(c); i++ {
			if !isAlnum(c[i]) && c[i] != '-' {
				return false
			}
		}
	}
	return true
}

// isTag: [\w][\w.-]{0,127}.
func isTag(s string) bool {
	if s == "" || len(s) > 128 || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDigestPattern: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}.
func isDigestPattern(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) < 32 || strings.Trim(hex, "0123456789abcdefABCDEF") != "" || alg == "" || !isAlpha(alg[0]) {
		return false
	}
	for i := 1; i < len(alg); i++ {
		switch c := alg[i]; {
		case isAlnum(c):
		case strings.IndexByte("-_+.", c) >= 0:
			if i++; i == len(alg) || !isAlpha(alg[i]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool { return strings.Trim(s, "0123456789abcdef") == "" }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isLowerAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool      { return isLowerAlpha(c) || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool      { return isAlpha(c) || isDigit(c) }
func isWord(c byte) bool       { return isAlnum(c) || c == '_' }

// Name is DOMAIN/PATH (PATH alone when what normalization made the domain
// is no domain, as in "a_b.com/x").
func (r Reference) Name() string {
	if r.domain == "" {
		return r.path
	}
	return r.domain + "/" + r.path
}

// Tag is the tag, "" when none.
func (r Reference) Tag() string { return r.tag }

// Digest is the digest, "" when none.
func (r Reference) Digest() digest.Digest { return r.digest }

// NameOnly reports whether r has neither tag nor digest.
func (r Reference) NameOnly() bool { return r.tag == "" && r.digest == "" }

// String is the normalized form, NAME[:TAG][@DIGEST].
func (r Reference) String() string { return r.Name() + r.suffix() }

func (r Reference) suffix() string {
	s := ""
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + string(r.digest)
	}
	return s
}

// WithDefaultTag is r tagged "latest" when it has neither tag nor digest.
func (r Reference) WithDefaultTag() Reference {
	if r.NameOnly() {
		r.tag = "latest"
	}
	return r
}

// FamiliarName is the name as docker shows it: without docker.io/, nor
// library/ for a one-component name there.
func (r Reference) FamiliarName() string {
	if r.domain != defaultDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.path, officialRepoPrefix); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.path
}

// FamiliarString is the familiar name with the tag and digest.
func (r Reference) FamiliarString() string { return r.FamiliarName() + r.suffix() }
