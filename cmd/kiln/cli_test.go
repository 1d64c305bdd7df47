package main

import (
	"encoding/json"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/registry/registrytest"
)

// lines splits output into its lines, without the final newline.
func splitOut(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// cols splits a table line into its columns (separated by 2 spaces or more).
func cols(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

func outLines(s string) []string {
	l := splitOut(s)
	sort.Strings(l)
	return l
}

// jsonKeys parses each line as a JSON object and returns the first's keys, sorted.
func jsonKeys(t *testing.T, out string) []string {
	t.Helper()
	var keys []string
	for i, l := range splitOut(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if i == 0 {
			for k := range m {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// TestCLIManagementCommands: docker's management commands exist as the
// same commands, and every parent command without a subcommand or with an
// unknown one fails with a usage line (a script must not go on).
func TestCLIManagementCommands(t *testing.T) {
	e := newEnv(t)
	root := newRootCommand()
	var parents []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.HasSubCommands() {
				parents = append(parents, s)
				walk(s)
			}
		}
	}
	walk(root)
	if len(parents) < 6 {
		t.Fatalf("only %d parent commands found", len(parents))
	}
	for _, p := range parents {
		path := strings.Fields(strings.TrimPrefix(p.CommandPath(), "kiln "))
		for _, args := range [][]string{path, append(slices.Clone(path), "nosuch")} {
			r := e.run("", args...)
			usage := "Usage:  " + p.CommandPath() + " COMMAND"
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, usage) {
				t.Errorf("kiln %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(args, " "), r.code, r.stdout, r.stderr, usage)
			}
		}
	}
	for _, path := range []string{
		"image ls", "image list", "image inspect", "image history", "image rm", "image prune", "image tag", "image save",
		"image load", "image import", "image pull", "image push", "image build",
		"container ls", "container ps", "container inspect", "container create", "container start", "container stop",
		"container kill", "container restart", "container rm", "container prune", "container logs", "container exec",
		"container attach", "container wait", "container top", "container diff", "container port", "container run",
		"builder prune", "builder du", "builder build", "system df", "system prune", "system info", "system check",
		"volume ls", "network ls",
	} {
		c, rest, err := root.Find(strings.Fields(path))
		if err != nil || len(rest) != 0 || c.Parent() == root {
			t.Errorf("%s: not a command (%v)", path, err)
		}
	}
	// Whatever container verb exists at top level is in `container`.
	top := map[string]bool{}
	for _, c := range root.Commands() {
		top[c.Name()] = true
	}
	for _, v := range containerVerbs {
		name := v.top
		if name == "" {
			name = v.name
		}
		if top[name] {
			if c, _, err := root.Find([]string{"container", v.name}); err != nil || c.Name() != v.name {
				t.Errorf("container %s: missing though %s exists", v.name, name)
			}
		}
	}
	if r := e.run("", "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "__start_kiln") {
		t.Errorf("completion bash: exit %d\n%s", r.code, r.stderr)
	}
	if r := e.run("", "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "kiln version ") {
		t.Errorf("--version: exit %d %q", r.code, r.stdout)
	}
	if got := e.kiln("version", "--format", "{{.Client.Os}}/{{.Client.Arch}} {{.Client.GoVersion}} {{.Client.StoreSchema}}"); got != runtime.GOOS+"/"+runtime.GOARCH+" "+runtime.Version()+" 1\n" {
		t.Errorf("version --format: %q", got)
	}
	if r := e.run("", "version", "--format", "{{.Server.Version}}"); r.code != 1 || !strings.Contains(r.stderr, `no entry for key "Server"`) {
		t.Errorf("version asked for a server: exit %d %q", r.code, r.stderr)
	}
}

// TestCLIListings runs the listings, inspects and prunes of one store with
// docker's formats and filters; expected outputs are what docker prints for
// the same state.
func TestCLIListings(t *testing.T) {
	e := newContainerEnv(t) // "bb"
	e.kiln("build", "-q", "--network", "none", "-t", "localhost/app:v1", writeContext(t, map[string]string{"Dockerfile": "FROM bb\nLABEL tier=front\nRUN echo hi > /hi\n"}))
	e.kiln("tag", "localhost/app:v1", "localhost/app:v2")
	appID := strings.TrimSpace(e.kiln("image", "inspect", "-f", "{{.Id}}", "localhost/app:v1"))
	bbID := strings.TrimSpace(e.kiln("image", "inspect", "--format", "{{.Id}}", "bb"))
	appShort, bbShort := appID[7:19], bbID[7:19]
	webID := strings.TrimSpace(e.kiln("create", "--name", "web", "-l", "tier=front", "-v", "vol1:/data", "--network", "none", "localhost/app:v1", "true"))
	e.kiln("create", "--name", "db", "--network", "none", "bb", "true")
	e.kiln("volume", "create", "--label", "scope=test", "v2")
	e.kiln("network", "create", "--label", "team=a", "net1")

	check := func(t *testing.T, args []string, want string) {
		t.Helper()
		if got := e.kiln(args...); got != want {
			t.Errorf("kiln %s:\ngot  %q\nwant %q", strings.Join(args, " "), got, want)
		}
	}
	checkSorted := func(t *testing.T, args []string, want ...string) {
		t.Helper()
		if got := outLines(e.kiln(args...)); !slices.Equal(got, want) {
			t.Errorf("kiln %s: got %q, want %q", strings.Join(args, " "), got, want)
		}
	}
	fails := func(t *testing.T, args []string, want string) {
		t.Helper()
		r := e.run("", args...)
		if r.code == 0 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "daemon") {
			t.Errorf("kiln %s: exit %d, stderr %q; want failure with %q", strings.Join(args, " "), r.code, r.stderr, want)
		}
	}

	t.Run("images", func(t *testing.T) {
		checkSorted(t, []string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, "bb:latest", "localhost/app:v1", "localhost/app:v2")
		checkSorted(t, []string{"image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "localhost/app"}, "localhost/app:v1", "localhost/app:v2")
		check(t, []string{"images", "--format", "{{.Tag}}", "localhost/app:v2"}, "v2\n")
		want := []string{appShort, appShort, bbShort} // a line per row, as docker's
		sort.Strings(want)
		checkSorted(t, []string{"images", "-q"}, want...)
		checkSorted(t, []string{"images", "-q", "--no-trunc", "bb"}, bbID)
		checkSorted(t, []string{"images", "-a", "--filter", "label=tier=front", "--format", "{{.Tag}}"}, "v1", "v2")
		checkSorted(t, []string{"images", "--filter", "label=tier=front", "-f", "reference=*/app:v1", "--format", "{{.Tag}}"}, "v1")
		checkSorted(t, []string{"images", "--filter", "reference=bb", "--filter", "reference=*/app:v2", "--format", "{{.Tag}}"}, "latest", "v2")
		checkSorted(t, []string{"images", "--filter", "since=bb", "--format", "{{.Tag}}"}, "v1", "v2")
		checkSorted(t, []string{"images", "--filter", "before=localhost/app:v1", "--format", "{{.Repository}}"}, "bb")
		check(t, []string{"images", "--filter", "dangling=true"}, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n")
		check(t, []string{"images", "--format", "table {{.Repository}}\\t{{.ID}}", "bb"}, "REPOSITORY   IMAGE ID\nbb           "+bbShort+"\n")
		check(t, []string{"images", "--format", "{{.Repository}}\\t{{.Digest}}", "bb"}, "bb\t<none>\n")
		// (CREATED may tick between two runs, "1 second ago" to "2 seconds
		// ago", and widen its column: compare the columns, not the padding
		// after it.)
		d, tb := splitOut(e.kiln("images")), splitOut(e.kiln("images", "--format", "table"))
		if len(d) != 4 || len(tb) != 4 || !slices.Equal(cols(d[0]), cols(tb[0])) || !slices.Equal(cols(d[0]), []string{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}) || !strings.HasPrefix(d[0], "REPOSITORY      TAG       IMAGE ID       CREATED ") {
			t.Errorf("images and images --format table differ or lack docker's header:\n%q\n%q", d, tb)
		}
		if h := splitOut(e.kiln("images", "--digests", "bb")); !slices.Equal(cols(h[0]), []string{"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"}) || !strings.HasPrefix(h[1], "bb           latest    <none>    "+bbShort+"   ") {
			t.Errorf("images --digests: %q", h)
		}
		if keys := jsonKeys(t, e.kiln("images", "--format", "json")); !slices.Equal(keys, []string{"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "SharedSize", "Size", "Tag", "UniqueSize"}) {
			t.Errorf("images json keys %v", keys)
		}
		fails(t, []string{"images", "--format", "{{.Nope}}"}, "can't evaluate field Nope")
		fails(t, []string{"images", "--filter", "nope=1"}, "invalid filter 'nope'")
		fails(t, []string{"images", "--filter", "dangling=maybe"}, "invalid filter 'dangling=maybe'")
		check(t, []string{"history", "--format", "{{.ID}} {{.CreatedBy}}", "localhost/app:v1"}, appShort+" RUN /bin/sh -c echo hi > /hi # buildkit\n<missing> LABEL tier=front\n<missing> "+
			strings.TrimSuffix(splitOut(e.kiln("history", "--format", "{{.CreatedBy}}", "bb"))[0], "\n")+"\n")
		if keys := jsonKeys(t, e.kiln("image", "history", "--format", "json", "bb")); !slices.Equal(keys, []string{"Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"}) {
			t.Errorf("history json keys %v", keys)
		}
		if h := splitOut(e.kiln("history", "bb"))[0]; !slices.Equal(cols(h), []string{"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}) {
			t.Errorf("history header %q", h)
		}
		if h := splitOut(e.kiln("history", "-H=false", "bb")); !slices.Equal(cols(h[0]), []string{"IMAGE", "CREATED AT", "CREATED BY", "SIZE", "COMMENT"}) || !regexp.MustCompile(`^[0-9a-f]{12}   \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)   .*   \d+ `).MatchString(h[1]) {
			t.Errorf("history -H=false: %q", h)
		}
	})

	t.Run("ps", func(t *testing.T) {
		checkSorted(t, []string{"ps", "-a", "--format", "{{.Names}}"}, "db", "web")
		check(t, []string{"ps", "--format", "{{.Names}}"}, "") // none running
		checkSorted(t, []string{"ps", "--filter", "status=created", "--format", "{{.Names}} {{.State}}"}, "db created", "web created")
		check(t, []string{"ps", "-a", "--filter", "name=we", "-q"}, webID[:12]+"\n")
		check(t, []string{"ps", "-a", "-f", "id=" + webID[:6], "-q", "--no-trunc"}, webID+"\n")
		check(t, []string{"ps", "-a", "-f", "label=tier=front", "--format", `{{.Names}} {{.Label "tier"}} {{.Labels}}`}, "web front tier=front\n")
		checkSorted(t, []string{"ps", "-a", "-f", "ancestor=bb", "--format", "{{.Names}}"}, "db", "web") // web's image is built on bb
		check(t, []string{"ps", "-a", "-f", "ancestor=" + appShort, "--format", "{{.Names}}"}, "web\n")
		check(t, []string{"ps", "-a", "-f", "ancestor=localhost/app:v2", "--format", "{{.Names}}"}, "web\n")
		check(t, []string{"ps", "-a", "-f", "volume=vol1", "--format", "{{.Names}} {{.Mounts}} {{.LocalVolumes}}"}, "web vol1 1\n")
		check(t, []string{"ps", "-a", "-f", "volume=/data", "--format", "{{.Names}}"}, "web\n")
		checkSorted(t, []string{"ps", "-a", "-f", "name=web", "-f", "name=db", "--format", "{{.Names}}"}, "db", "web") // same key: OR
		check(t, []string{"ps", "-a", "-f", "name=web", "-f", "label=nope", "--format", "{{.Names}}"}, "")             // different keys: AND
		check(t, []string{"ps", "-a", "-f", "exited=0", "--format", "{{.Names}}"}, "")
		check(t, []string{"ps", "-a", "-f", "network=none", "-f", "name=db", "--format", "{{.Names}} {{.Networks}} {{.Platform}} {{json .Platform}}"}, "db none linux/"+runtime.GOARCH+` {"architecture":"`+runtime.GOARCH+`","os":"linux"}`+"\n")
		check(t, []string{"ps", "-a", "-f", "since=db", "--format", "{{.Names}}"}, "")
		check(t, []string{"ps", "-a", "-f", "before=db", "--format", "{{.Names}}"}, "web\n")
		check(t, []string{"ps", "-a", "-f", "name=db", "--format", "table {{.Names}}\\t{{.Status}}\\t{{.Networks}}"}, "NAMES     STATUS    NETWORKS\ndb        Created   none\n")
		if keys := jsonKeys(t, e.kiln("ps", "-a", "--format", "json")); !slices.Equal(keys, []string{"Command", "CreatedAt", "HealthStatus", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks", "Platform", "Ports", "RunningFor", "Size", "State", "Status"}) {
			t.Errorf("ps json keys %v", keys)
		}
		noTime := "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
		if a, b := e.kiln("ps", "-a", "--format", noTime), e.kiln("container", "ls", "-a", "--format", noTime); a != b || !strings.HasPrefix(a, "CONTAINER ID   IMAGE              COMMAND   STATUS    PORTS     NAMES\n") {
			t.Errorf("ps -a and container ls -a differ:\n%s\n%s", a, b)
		}
		if h := splitOut(e.kiln("container", "ls", "-a"))[0]; !slices.Equal(cols(h), []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"}) {
			t.Errorf("container ls header %q", h)
		}
		fails(t, []string{"ps", "-f", "status=sleepy"}, "invalid filter 'status=sleepy'")
		fails(t, []string{"ps", "--format", "{{.Nope}}"}, "can't evaluate field Nope") // even with no row
	})

	t.Run("inspect", func(t *testing.T) {
		check(t, []string{"container", "inspect", "--format", "{{.Name}} {{.Config.Labels.tier}}", "web"}, "/web front\n")
		check(t, []string{"image", "inspect", "-f", "{{.Os}} {{json .RepoTags}} {{json .RepoDigests}}", "localhost/app:v1"}, `linux ["localhost/app:v1","localhost/app:v2"] []`+"\n")
		check(t, []string{"inspect", "-f", "{{.Config.Labels.tier}}", "web", "localhost/app:v1"}, "front\nfront\n")
		if a, b := e.kiln("inspect", "bb"), e.kiln("image", "inspect", "--format", "json", "bb"); a != b || !strings.HasPrefix(a, "[\n    {\n        \"Id\": \"sha256:") {
			t.Errorf("inspect and image inspect --format json differ:\n%s\n%s", a, b)
		}
		fails(t, []string{"container", "inspect", "bb"}, "no such container")
		fails(t, []string{"image", "inspect", "web"}, "no such image")
		fails(t, []string{"inspect", "-f", "{{.Config.Nope}}", "bb"}, `map has no entry for key "Nope"`)
		r := e.run("", "inspect", "--format", "{{.Name}}", "web", "nosuch")
		if r.code != 1 || r.stdout != "/web\n" || !strings.Contains(r.stderr, "no such object: nosuch") {
			t.Errorf("inspect of one found, one missing: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		check(t, []string{"volume", "inspect", "-f", "{{.Labels.scope}} {{.Driver}}", "v2"}, "test local\n")
		check(t, []string{"network", "inspect", "-f", "{{.Labels.team}} {{.Driver}}", "net1"}, "a bridge\n")
		check(t, []string{"info", "--format", "{{.Images}} {{.Containers}} {{.ContainersStopped}} {{.Driver}}"}, "2 2 2 overlay2\n")
		var info map[string]any
		if err := json.Unmarshal([]byte(e.kiln("system", "info", "--format", "json")), &info); err != nil || info["OSType"] != "linux" {
			t.Errorf("info json: %v %v", err, info)
		}
	})

	t.Run("volumes and networks", func(t *testing.T) {
		checkSorted(t, []string{"volume", "ls", "-q"}, "v2", "vol1")
		check(t, []string{"volume", "ls", "-f", "label=scope=test", "--format", "{{.Name}} {{.Labels}} {{.Label \"scope\"}}"}, "v2 scope=test test\n")
		check(t, []string{"volume", "ls", "-f", "dangling=true", "-q"}, "v2\n")
		check(t, []string{"volume", "ls", "-f", "dangling=false", "-q"}, "vol1\n")
		check(t, []string{"volume", "ls", "-f", "name=vol", "-f", "driver=local", "-q"}, "vol1\n")
		check(t, []string{"volume", "ls", "-f", "name=v2"}, "DRIVER    VOLUME NAME\nlocal     v2\n")
		if keys := jsonKeys(t, e.kiln("volume", "ls", "--format", "json")); !slices.Equal(keys, []string{"Availability", "Driver", "Group", "Labels", "Links", "Mountpoint", "Name", "Scope", "Size", "Status"}) {
			t.Errorf("volume ls json keys %v", keys)
		}
		fails(t, []string{"volume", "ls", "-f", "color=red"}, "invalid filter 'color'")
		check(t, []string{"network", "ls", "-f", "type=custom", "--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Internal}}"}, "net1 bridge team=a false\n")
		checkSorted(t, []string{"network", "ls", "-f", "type=builtin", "--format", "{{.Name}}"}, "bridge", "host", "none")
		checkSorted(t, []string{"network", "ls", "-f", "driver=bridge", "--format", "{{.Name}}"}, "bridge", "net1")
		check(t, []string{"network", "ls", "-f", "label=team", "--format", "table {{.Name}}\\t{{.Scope}}"}, "NAME      SCOPE\nnet1      local\n")
		netID := strings.TrimSpace(e.kiln("network", "inspect", "-f", "{{.Id}}", "net1"))
		check(t, []string{"network", "ls", "-f", "id=" + netID[:5], "-q"}, netID[:12]+"\n")
		check(t, []string{"network", "ls", "-f", "name=net1", "-q", "--no-trunc"}, netID+"\n")
		if keys := jsonKeys(t, e.kiln("network", "ls", "--format", "json")); !slices.Equal(keys, []string{"CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope"}) {
			t.Errorf("network ls json keys %v", keys)
		}
		checkSorted(t, []string{"system", "df", "--format", "{{.Type}}: {{.TotalCount}} {{.Active}}"}, "Build Cache: 1 0", "Containers: 2 0", "Images: 2 2", "Local Volumes: 2 1")
		if keys := jsonKeys(t, e.kiln("system", "df", "--format", "json")); !slices.Equal(keys, []string{"Active", "Reclaimable", "Size", "TotalCount", "Type"}) {
			t.Errorf("system df json keys %v", keys)
		}
		fails(t, []string{"system", "df", "-v", "--format", "json"}, "--format cannot be combined with --verbose")
		if du := splitOut(e.kiln("builder", "du")); len(du) != 6 || !slices.Equal(cols(du[0]), []string{"ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"}) ||
			!strings.Contains(du[1], "   false   ") || !slices.Equal(du[2:], []string{"Shared:\t\t3B", "Private:\t0B", "Reclaimable:\t0B", "Total:\t\t3B"}) {
			t.Errorf("builder du: %q", du) // the one RUN step's record; its layer is the image's
		}
		check(t, []string{"builder", "du", "--format", "{{.Description}} {{.Reclaimable}}"}, "RUN /bin/sh -c echo hi > /hi # buildkit false\n")
	})

	t.Run("prune filters", func(t *testing.T) {
		fails(t, []string{"container", "prune", "-f", "--filter", "name=web"}, "invalid filter 'name'")
		fails(t, []string{"system", "prune", "-f", "--filter", "until=soon"}, "invalid filter 'until=soon'")
		out := e.kiln("container", "prune", "-f", "--filter", "label=tier=front")
		if !strings.Contains(out, "Deleted Containers:\n"+webID+"\n") {
			t.Errorf("container prune label=: %q", out)
		}
		check(t, []string{"ps", "-a", "--format", "{{.Names}}"}, "db\n")
		e.kiln("container", "prune", "-f", "--filter", "label!=tier", "--filter", "until=24h") // db is younger: stays
		check(t, []string{"ps", "-a", "--format", "{{.Names}}"}, "db\n")
		out = e.kiln("volume", "prune", "-a", "-f", "--filter", "label!=scope=test")
		if !strings.Contains(out, "Deleted Volumes:\nvol1\n") || strings.Contains(out, "v2") {
			t.Errorf("volume prune label!=: %q", out)
		}
		if out := e.kiln("network", "prune", "-f", "--filter", "label=team=b"); out != "" {
			t.Errorf("network prune label=team=b removed %q", out)
		}
		if out := e.kiln("network", "prune", "-f", "--filter", "label=team=a"); out != "Deleted Networks:\nnet1\n" {
			t.Errorf("network prune label=team=a: %q", out)
		}
		out = e.kiln("image", "prune", "-a", "-f", "--filter", "label=tier=front")
		if !strings.Contains(out, "untagged: localhost/app:v1\n") || !strings.Contains(out, "deleted: "+appID) || strings.Contains(out, bbID) {
			t.Errorf("image prune label=: %q", out)
		}
		check(t, []string{"images", "--format", "{{.Repository}}"}, "bb\n")
		if out := e.kiln("builder", "prune", "-f", "--filter", "label=x"); !strings.HasPrefix(out, "Deleted build cache objects: 0\n") {
			t.Errorf("builder prune label=x: %q", out)
		}
	})
}

// TestCLIRepoDigests: pull and push record the repository digest; images
// --digests and inspect show it; a pull by digest lists as REPOSITORY
// <none>; run and inspect take name@sha256:….
func TestCLIRepoDigests(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t, registrytest.Options{})
	e.importBase("localhost/bb:latest")
	ref := reg.Ref("cli/bb:v1")
	repo := reg.Ref("cli/bb")
	e.kiln("tag", "localhost/bb", ref)
	out := e.kiln("push", "-q", ref)
	_, after, ok := strings.Cut(out, "digest: ")
	dgst, _, _ := strings.Cut(after, " ")
	if !ok || !strings.HasPrefix(dgst, "sha256:") {
		t.Fatalf("push output %q", out)
	}
	byDigest := repo + "@" + dgst
	if got := e.kiln("inspect", "-f", "{{json .RepoDigests}}", ref); got != `["`+byDigest+`"]`+"\n" {
		t.Errorf("RepoDigests after push: %s", got)
	}
	if got := e.kiln("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", repo); got != repo+" v1 "+dgst+"\n" {
		t.Errorf("images --digests after push: %q", got)
	}
	id := strings.TrimSpace(e.kiln("inspect", "-f", "{{.Id}}", ref))
	if got := strings.TrimSpace(e.kiln("image", "inspect", "-f", "{{.Id}}", byDigest)); got != id {
		t.Errorf("inspect %s: %s, want %s", byDigest, got, id)
	}

	// Pulled by digest into an empty store: no tag, the digest shown.
	f := newEnv(t)
	f.kiln("pull", "-q", byDigest)
	if got := f.kiln("images", "--format", "{{.Repository}} {{.Tag}}"); got != repo+" <none>\n" {
		t.Errorf("images after pull by digest: %q", got)
	}
	if got := f.kiln("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"); got != repo+" <none> "+dgst+"\n" {
		t.Errorf("images --digests after pull by digest: %q", got)
	}
	if got := f.kiln("inspect", "-f", "{{json .RepoTags}} {{json .RepoDigests}} {{.Id}}", byDigest); got != `[] ["`+byDigest+`"] `+id+"\n" {
		t.Errorf("inspect after pull by digest: %q", got)
	}
	if got := f.kiln("run", "--rm", "--network", "none", byDigest, "echo", "ran"); got != "ran\n" {
		t.Errorf("run %s: %q", byDigest, got)
	}
	// Pulled by tag: the digest is recorded too.
	f.kiln("pull", "-q", ref)
	if got := f.kiln("images", "--digests", "--format", "{{.Tag}} {{.Digest}}"); got != "v1 "+dgst+"\n" {
		t.Errorf("images --digests after pull by tag: %q", got)
	}
	// rmi by digest removes the digest reference; the tag keeps the image.
	if got := f.kiln("rmi", byDigest); got != "Untagged: "+byDigest+"\n" {
		t.Errorf("rmi %s: %q", byDigest, got)
	}
	if got := f.kiln("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); got != ref+" "+id[7:19]+"\n" {
		t.Errorf("images after rmi by digest: %q", got)
	}
}
