package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// Kiln inside an unprivileged CI container (issue 17, point 3): a container
// started without --privileged and without added capabilities, with only
// what rootless BuildKit documents (seccomp and AppArmor unconfined, /proc
// unmasked), running kiln as an ordinary user with a subordinate id range.

// ciSecurityOpts are what such a container needs, as kiln run (and docker run)
// spell it; ciUser is the image's user.
var ciSecurityOpts = []string{"--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"}

const (
	ciUser = "1000"
	// ciData is the user's XDG_DATA_HOME, a volume: its default store is
	// ciData/kiln (overlay cannot use the container's own overlay as upper).
	ciData = "/home/app/.local/share"
	// ciSubIDs is the image's /etc/subuid and /etc/subgid: every id of the
	// 0-65535 a user-namespaced pod (hostUsers: false) has, but root's and
	// the user's own, so the namespace has ids 0-65534 (nobody's included).
	ciSubIDs = "app:1:999\napp:1001:64535\n"
)

// fileCaps is a security.capability xattr (VFS_CAP_REVISION_2) giving the
// file capability capability, effective: `setcap cap_setuid=ep`.
func fileCaps(capability uint) []byte {
	const revision2, effective = 0x02000000, 0x000001
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], 1<<capability) // permitted, low word
	return b
}

// ciImage builds the kiln CI image from this machine's files and imports it
// into e's store: testdata/mkbase.sh's busybox root (user app, uid 1000),
// kiln (when kilnBin is set) as /usr/local/bin/kiln, Debian's newuidmap and
// newgidmap with the shared libraries ldd names, and the subordinate ranges.
//
// newuidmap and newgidmap carry file capabilities (cap_setuid=ep,
// cap_setgid=ep), as BuildKit's and buildah's images do, not the setuid bit
// Debian installs them with: run setuid they are euid 0 without
// CAP_SYS_ADMIN (outside docker's default set), and the kernel refuses a
// uid_map write from a process that is neither the namespace's owner nor
// CAP_SYS_ADMIN over it (EPERM, checked here). With file capabilities they
// run as the user, the owner, with just CAP_SETUID/CAP_SETGID.
func (e *env) ciImage(kilnBin string) string {
	t := e.t
	t.Helper()
	kilntest.NeedTool(t, "newuidmap") // Debian's uidmap; make deps installs it
	kilntest.NeedTool(t, "newgidmap")
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	mk, _ := filepath.Abs("../../testdata/mkbase.sh")
	mustRun(t, "sh", mk, root)
	copyFile := func(src, dst string, mode os.FileMode) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyLibs := func(bin string) {
		for _, lib := range regexp.MustCompile(`(?m)(/\S+) \(0x`).FindAllStringSubmatch(mustRun(t, "ldd", bin), -1) {
			copyFile(lib[1], filepath.Join(root, lib[1]), 0o755)
		}
	}
	if kilnBin != "" {
		copyFile(kilnBin, filepath.Join(root, "usr/local/bin/kiln"), 0o755)
	}
	for name, capability := range map[string]uint{"newuidmap": unix.CAP_SETUID, "newgidmap": unix.CAP_SETGID} {
		src, _ := exec.LookPath(name)
		dst := filepath.Join(root, "usr/bin", name)
		copyFile(src, dst, 0o755)
		if err := unix.Setxattr(dst, "security.capability", fileCaps(capability), 0); err != nil {
			t.Fatalf("set file capabilities on %s: %v", dst, err)
		}
		copyLibs(src)
	}
	// iptables (nft) for the rules of rootless kiln's bridge networks, with
	// its extensions (MASQUERADE, conntrack, ...), as the image's package
	// would install it.
	kilntest.NeedTool(t, "xtables-nft-multi")
	xt, _ := exec.LookPath("xtables-nft-multi")
	copyFile(xt, filepath.Join(root, "usr/sbin/xtables-nft-multi"), 0o755)
	copyLibs(xt)
	for _, name := range []string{"iptables", "iptables-save", "iptables-restore"} {
		if err := os.Symlink("xtables-nft-multi", filepath.Join(root, "usr/sbin", name)); err != nil {
			t.Fatal(err)
		}
	}
	exts, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/xtables/*.so")
	for _, ext := range exts {
		copyFile(ext, filepath.Join(root, ext), 0o644)
		copyLibs(ext)
	}
	// slirp4netns: rootless kiln's network for RUN steps and containers
	kilntest.NeedTool(t, "slirp4netns")
	slirp, _ := exec.LookPath("slirp4netns")
	copyFile(slirp, filepath.Join(root, "usr/bin/slirp4netns"), 0o755)
	copyLibs(slirp)
	for _, f := range []string{"etc/subuid", "etc/subgid"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(ciSubIDs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// /run, as every distribution's image has it: the sandbox of slirp4netns
	// mounts it.
	for _, d := range []string{ciData, "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "chown", "-R", "1000:1000", filepath.Join(root, "home/app"))
	tarPath := filepath.Join(dir, "ci.tar")
	mustRun(t, "tar", "--xattrs", "--xattrs-include=security.capability", "--numeric-owner", "-C", root, "-cf", tarPath, ".")
	const ref = "localhost/kiln-ci:latest"
	e.kiln("import", tarPath, ref)
	return ref
}

// staticKiln builds kiln as it ships (a static binary: cgo, netgo and
// osusergo) for the CI image.
func staticKiln(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "kiln")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "netgo,osusergo", "-ldflags", "-extldflags -static", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build static kiln: %v\n%s", err, b)
	}
	return out
}

// ciProbe is what rootless kiln does first inside the container, by hand:
// newuidmap/newgidmap map the user's whole range into a new user namespace,
// where root mounts an overlay (on a tmpfs) and, in a new PID namespace, a
// proc.
const ciProbe = `
mkfifo /tmp/go
unshare -U -m sh -c 'read x < /tmp/go; exec "$@"' sh sh -ec '
	echo mapped $(cat /proc/self/uid_map)
	mkdir /tmp/o && mount -t tmpfs t /tmp/o && mkdir /tmp/o/l /tmp/o/u /tmp/o/w /tmp/o/m
	mount -t overlay o -o lowerdir=/tmp/o/l,upperdir=/tmp/o/u,workdir=/tmp/o/w /tmp/o/m && echo overlay-ok
	unshare -p -f --mount-proc sh -c "echo proc-ok"' & pid=$!
# until the child is in its namespace, or gone (unshare refused)
while kill -0 $pid 2>/dev/null && [ "$(readlink /proc/$pid/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.01; done
kill -0 $pid 2>/dev/null || exit 1
newuidmap $pid 0 1000 1 1 1 999 1000 1001 64535 && newgidmap $pid 0 1000 1 1 1 999 1000 1001 64535
echo > /tmp/go
wait $pid
`

// TestRootlessCIContainer checks what an unprivileged CI container gives
// rootless kiln, under kiln run and podman run with the flags rootless
// BuildKit documents: the user maps its whole subordinate range (through
// newuidmap's file capabilities, which survive import), mounts overlay and
// proc. Without seccomp=unconfined the user namespace is refused; with
// /proc masked, a new proc mount is.
func TestRootlessCIContainer(t *testing.T) {
	e := newEnv(t)
	img := e.ciImage("")
	want := []string{"mapped 0 1000 1 1 1 999 1000 1001 64535\n", "overlay-ok", "proc-ok"}
	check := func(what string, out []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: no %q in:\n%s", what, w, out)
			}
		}
	}
	run := func(flags ...string) result {
		args := append([]string{"run", "--rm", "--network", "none", "--user", ciUser}, flags...)
		return e.run("", append(args, img, "sh", "-c", ciProbe)...)
	}
	r := run(ciSecurityOpts...)
	check("kiln run "+strings.Join(ciSecurityOpts, " "), []byte(r.stdout+r.stderr), nil)

	// Docker's default seccomp profile refuses unshare(CLONE_NEWUSER) without
	// CAP_SYS_ADMIN; a masked /proc (docker's default) forbids a new proc mount.
	if r := run("--security-opt", "systempaths=unconfined"); r.code == 0 || !strings.Contains(r.stderr, "unshare(0x10020000): Operation not permitted") {
		t.Errorf("default seccomp: want unshare refused, got exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("--security-opt", "seccomp=unconfined"); r.code == 0 || !strings.Contains(r.stdout, "overlay-ok") || strings.Contains(r.stdout, "proc-ok") {
		t.Errorf("masked /proc: want overlay mounted and proc refused, got exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// podman: Debian's crun refuses this machine's hybrid cgroup layout
	// ("cgroups in hybrid mode not supported"), runc runs it. unmask=ALL is
	// podman's systempaths=unconfined.
	kilntest.NeedTool(t, "podman")
	kilntest.NeedTool(t, "runc")
	save := filepath.Join(t.TempDir(), "ci.tar")
	e.kiln("save", "--format", "docker", "-o", save, img)
	runroot, err := os.MkdirTemp("", "pm") // podman wants a runroot under 50 characters
	if err != nil {
		t.Fatal(err)
	}
	podman := []string{"--root", filepath.Join(t.TempDir(), "podman"), "--runroot", runroot, "--runtime", "runc", "--cgroup-manager", "cgroupfs"}
	t.Cleanup(func() {
		exec.Command("podman", append(podman, "rmi", "-af")...).Run()
		exec.Command("podman", append(podman, "system", "reset", "-f")...).Run()
		os.RemoveAll(runroot)
	})
	mustRun(t, "podman", append(podman, "load", "-q", "-i", save)...)
	// podman's default limits are above what this machine allows (as in bench/compare.sh)
	var nofile unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile)
	out, err := exec.Command("podman", append(podman, "run", "--rm", "--network", "none",
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Max, nofile.Max), "--ulimit", "nproc=4096:4096",
		"--user", ciUser, "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--security-opt", "unmask=ALL",
		img, "sh", "-c", ciProbe)...).CombinedOutput()
	check("podman run", out, err)
}

// ciContainer starts the CI image as a long-lived unprivileged container
// (the user's store a volume, dirs bound in as named) and returns its name
// and its network's gateway, the host address it reaches.
func (e *env) ciContainer(img string, binds ...string) (name, gateway string) {
	t := e.t
	t.Helper()
	data := t.TempDir()
	mustRun(t, "chown", "1000:1000", data)
	// /dev/net/tun for slirp4netns, as docker run --device /dev/net/tun
	// gives it: kiln run's --device takes CDI names, so a spec for it (mode
	// 0666 in the container, as Debian's udev makes it on a host: the
	// container's user opens it).
	specs := t.TempDir()
	spec, _ := json.Marshal(map[string]any{"cdiVersion": "0.6.0", "kind": "kiln.test/net", "devices": []any{
		map[string]any{"name": "tun", "containerEdits": map[string]any{"deviceNodes": []any{map[string]any{"path": "/dev/net/tun", "fileMode": 0o666}}}}}})
	if err := os.WriteFile(filepath.Join(specs, "tun.json"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KILN_CDI_SPEC_DIRS", specs)
	name = "kiln-ci-" + filepath.Base(t.TempDir())
	args := append([]string{"run", "-d", "--name", name, "--user", ciUser, "--device", "kiln.test/net=tun", "-v", data + ":" + ciData}, ciSecurityOpts...)
	for _, b := range binds {
		args = append(args, "-v", b)
	}
	e.kiln(append(args, img, "sleep", "3600")...)
	t.Cleanup(func() { e.run("", "rm", "-f", name) })
	gateway = strings.TrimSpace(e.kiln("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge"))
	if r := e.ciExec(name, "/", "test -c /dev/net/tun && slirp4netns --version >/dev/null"); r.code != 0 {
		t.Fatalf("the CI container has no usable /dev/net/tun or slirp4netns: %s%s", r.stdout, r.stderr)
	}
	return name, gateway
}

// ciExec runs script in the CI container as its user, with env.
func (e *env) ciExec(name, workdir, script string, env ...string) result {
	e.t.Helper()
	args := []string{"exec", "-u", ciUser, "-w", workdir}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	return e.run("", append(args, name, "sh", "-ec", script)...)
}

// needRootlessNetwork checks that a container on the default network runs
// in the CI container (slirp4netns on its /dev/net/tun, iptables for the
// bridge's rules) before the examples need it.
func (e *env) needRootlessNetwork(name string) {
	e.t.Helper()
	r := e.ciExec(name, "/", "export XDG_DATA_HOME="+ciData+"/netprobe\nkiln load -i /base.tar >/dev/null\nkiln run --rm localhost/bb:latest true")
	if r.code != 0 {
		e.t.Fatalf("a container on the default network, in the CI container: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// savedBase is the tests' busybox base image, localhost/bb:latest, in e's
// store and saved to an archive for the CI container's kiln to load (the
// same image: an import there would record another time).
func (e *env) savedBase() string {
	e.t.Helper()
	e.importBase("localhost/bb:latest")
	p := filepath.Join(e.t.TempDir(), "bb.tar")
	e.kiln("save", "-o", p, "localhost/bb:latest")
	if err := os.Chmod(p, 0o644); err != nil { // the container's user reads it
		e.t.Fatal(err)
	}
	return p
}

// multiOwner is a Dockerfile whose image holds files of several owners.
const multiOwner = `FROM localhost/bb
RUN mkdir /data && echo hi > /data/f && chown 1234:5678 /data/f && chown 42:43 /data && chown 65534:65534 /tmp
COPY --chown=2000:3000 app /app
USER app
RUN touch /home/app/made-by-app
`

// TestRootlessCIBuild builds a multi-owner Dockerfile with kiln inside the
// unprivileged container, as its user, and saves it: the image equals the
// one root kiln builds from the same context and SOURCE_DATE_EPOCH, and the
// saved archive loads into root kiln's store as that image. Without the
// flags, kiln inside fails with one line saying what the container lacks.
func TestRootlessCIBuild(t *testing.T) {
	e := newEnv(t)
	img := e.ciImage(staticKiln(t))
	base := e.savedBase()
	ctx := writeContext(t, map[string]string{"Dockerfile": multiOwner, "app": "the app\n"})
	out := t.TempDir()
	mustRun(t, "chown", "1000:1000", out)
	name, _ := e.ciContainer(img, ctx+":/ctx:ro", base+":/base.tar:ro", out+":/out")

	r := e.ciExec(name, "/", `kiln load -i /base.tar >/dev/null
kiln build --network none --source-date-epoch 1700000000 --iidfile /out/iid -t multi:1 /ctx
kiln save -o /out/multi.tar multi:1
kiln run --rm --network none multi:1 stat -c '%u:%g %n' /data /data/f /app /tmp /home/app/made-by-app`)
	if r.code != 0 {
		t.Fatalf("rootless build in the container: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantOwners := "42:43 /data\n1234:5678 /data/f\n2000:3000 /app\n65534:65534 /tmp\n1000:1000 /home/app/made-by-app\n"
	if r.stdout != wantOwners {
		t.Errorf("owners in the rootless image:\n%s\nwant:\n%s", r.stdout, wantOwners)
	}
	inner, _ := os.ReadFile(filepath.Join(out, "iid"))
	rootIID := filepath.Join(t.TempDir(), "iid")
	e.kiln("build", "--network", "none", "--source-date-epoch", "1700000000", "--iidfile", rootIID, "-t", "multi:root", ctx)
	outer, _ := os.ReadFile(rootIID)
	if len(inner) == 0 || string(inner) != string(outer) {
		t.Errorf("image ID built rootless in the container %q, as root %q", inner, outer)
	}
	e.kiln("rmi", "multi:root")
	e.kiln("load", "-i", filepath.Join(out, "multi.tar"))
	if id := strings.TrimSpace(e.kiln("inspect", "-f", "{{.Id}}", "multi:1")); id != strings.TrimSpace(string(outer)) {
		t.Errorf("the saved rootless image loads as %s, root built %s", id, outer)
	}

	// Without the flags: one line naming what is missing.
	for _, c := range []struct{ keep, missing string }{
		{"systempaths=unconfined", "seccomp=unconfined"},
		{"seccomp=unconfined", "systempaths=unconfined"},
	} {
		args := []string{"run", "--rm", "--network", "none", "--user", ciUser, "-v", ctx + ":/ctx:ro", "--security-opt", c.keep}
		r := e.run("", append(args, img, "kiln", "build", "--network", "none", "/ctx")...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "kiln: ") || !strings.Contains(lines[0], c.missing) {
			t.Errorf("without --security-opt %s: want one line naming it, got exit %d:\n%s", c.missing, r.code, r.stderr)
		}
	}
}

// readmeBlock is the fenced block of the README that follows marker.
func readmeBlock(t *testing.T, readme, marker string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, marker)
	if !ok {
		t.Fatalf("README has no %s", marker)
	}
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README's block after %s does not end", marker)
	}
	return block
}

// scriptLines are the lines of a YAML block scalar or sequence that follows
// the line ending in key, down to the first line indented less.
func scriptLines(t *testing.T, yaml, key string) string {
	t.Helper()
	var out []string
	indent := -1
	in := false
	for _, line := range strings.Split(yaml, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case !in:
			in = strings.HasSuffix(strings.TrimSpace(line), key)
		case indent < 0:
			indent = len(line) - len(trimmed)
			fallthrough
		case len(line)-len(trimmed) >= indent && trimmed != "":
			out = append(out, strings.TrimPrefix(line[indent:], "- "))
		default:
			return strings.Join(out, "\n")
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s block in:\n%s", key, yaml)
	}
	return strings.Join(out, "\n")
}

// TestREADMERootlessExamples: the README's GitLab CI job and Kubernetes Job
// are testdata/rootless/gitlab-ci.yml and k8s-job.yaml, verbatim, and their
// kiln commands run as written inside the unprivileged CI container, as its
// user, against a real registry (with authentication) on the address the
// container reaches: each pushes the image and the build cache, and a second
// run in a fresh store (the next job, another machine) builds from the
// registry's cache.
func TestREADMERootlessExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range []string{"gitlab-ci.yml", "k8s-job.yaml"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/rootless", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(data)
		if block := readmeBlock(t, string(readme), "<!-- rootless: testdata/rootless/"+f+" -->"); block != files[f] {
			t.Errorf("README's block differs from testdata/rootless/%s:\n%s", f, block)
		}
	}
	gitlab := scriptLines(t, files["gitlab-ci.yml"], "script:")
	k8s := scriptLines(t, files["k8s-job.yaml"], "- |")
	for _, s := range []string{gitlab, k8s} {
		if !strings.Contains(s, "kiln build") || !strings.Contains(s, "--cache-to type=registry") {
			t.Fatalf("example script without kiln build --cache-to type=registry:\n%s", s)
		}
	}

	e := newEnv(t)
	kilntest.NeedTool(t, "skopeo")
	img := e.ciImage(staticKiln(t))
	base := e.savedBase()
	ctx := writeContext(t, map[string]string{"Dockerfile": multiOwner, "app": "the app\n"})
	auth := t.TempDir()
	name, gateway := e.ciContainer(img, ctx+":/workspace:ro", base+":/base.tar:ro", auth+":/auth:ro")
	e.needRootlessNetwork(name)
	reg := registrytest.Start(t, registrytest.Options{Addr: gateway, Auth: true})
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))}}})
	if err := os.WriteFile(filepath.Join(auth, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// A fresh store for each job (the user cannot remove the files of its
	// range from outside its namespace: a new XDG_DATA_HOME), which knows the
	// plain-HTTP test registry and holds the base image (the examples' FROM
	// would pull it).
	fresh := func(job string) string {
		return "export XDG_DATA_HOME=" + ciData + "/" + job + "\nmkdir -p $XDG_DATA_HOME/kiln\n" +
			"echo '{\"insecure-registries\":[\"" + reg.Host + "\"]}' > $XDG_DATA_HOME/kiln/config.json\n" +
			"kiln load -i /base.tar >/dev/null\n"
	}

	jobs := []struct {
		name, script string
		env          []string
		image        string
	}{
		{"gitlab", gitlab, []string{"CI_REGISTRY=" + reg.Host, "CI_REGISTRY_IMAGE=" + reg.Ref("team/app"),
			"CI_REGISTRY_USER=" + reg.User, "CI_REGISTRY_PASSWORD=" + reg.Password, "CI_COMMIT_SHORT_SHA=0123abcd"}, reg.Ref("team/app:0123abcd")},
		{"k8s", strings.ReplaceAll(k8s, "registry.example.com", reg.Host), []string{"DOCKER_CONFIG=/auth"}, reg.Ref("team/app:latest")},
	}
	for _, j := range jobs {
		for run := 1; run <= 2; run++ {
			r := e.ciExec(name, "/workspace", fresh(fmt.Sprintf("%s-%d", j.name, run))+j.script, j.env...)
			if r.code != 0 {
				t.Fatalf("%s job, run %d: exit %d\n%s\n%s%s", j.name, run, r.code, j.script, r.stdout, r.stderr)
			}
			cached := strings.Count(r.stdout+r.stderr, "CACHED")
			if run == 2 && cached < 3 {
				t.Errorf("%s job, run 2 in a fresh store: %d steps CACHED from the registry, want 3\n%s", j.name, cached, r.stderr)
			}
			mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--creds", reg.User+":"+reg.Password, "docker://"+j.image)
		}
	}
}
