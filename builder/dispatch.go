package builder

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func asName(name string) string {
	if name == "" {
		return ""
	}
	return " AS " + name
}

// commandText is the instruction as written, on one line.
func commandText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return strings.Join(strings.Fields(s.String()), " ")
	}
	return strings.ToUpper(cmd.Name())
}

func (b *build) declareArgs(st *stage, c *instructions.ArgCommand) error {
	for _, kv := range c.Args {
		key, err := st.expand(kv.Key)
		if err != nil {
			return b.errorf(lineOf(c), "ARG %s: %v", kv.Key, err)
		}
		a := arg{key: key}
		if v, ok := b.opts.BuildArgs[key]; ok {
			a.value = &v
		} else if kv.Value != nil {
			v, err := st.expand(*kv.Value)
			if err != nil {
				return b.errorf(lineOf(c), "ARG %s: %v", kv.Key, err)
			}
			a.value = &v
		}
		st.args = append(st.args, a)
	}
	return nil
}

// dispatch runs one instruction of the stage. RUN, COPY, ADD and WORKDIR
// go through the build cache (build.step): hit reports that the step took
// its result from it.
func (b *build) dispatch(ctx context.Context, st *stage, meta *stage, cmd instructions.Command) (hit bool, err error) {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
			if err := ex.Expand(st.expand); err != nil {
				return false, fmt.Errorf("%s: %w", strings.ToUpper(cmd.Name()), err)
			}
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc contents: expanded unless their delimiter was quoted.
		if err := ex.ExpandRaw(st.expandRaw); err != nil {
			return false, fmt.Errorf("%s: %w", strings.ToUpper(cmd.Name()), err)
		}
	}
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return b.runStep(ctx, st, c)
	case *instructions.CopyCommand:
		return b.copyStep(ctx, st, copyRequest{
			name: "COPY", sd: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			link: c.Link, excludes: c.ExcludePatterns, parents: c.Parents,
		})
	case *instructions.AddCommand:
		return b.addStep(ctx, st, copyRequest{
			name: "ADD", sd: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, link: c.Link,
			excludes: c.ExcludePatterns, add: true, checksum: c.Checksum, keepGitDir: c.KeepGitDir,
			unpack: c.Unpack,
		})
	case *instructions.WorkdirCommand:
		return b.workdir(ctx, st, c)
	}
	return false, b.configStep(st, meta, cmd)
}

// configStep runs an instruction that changes only the image config (and
// history): nothing to cache.
func (b *build) configStep(st *stage, meta *stage, cmd instructions.Command) error {
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range c.Env {
			st.setEnv(kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		st.addHistory("ENV "+strings.Join(parts, " "), true)
	case *instructions.ArgCommand:
		var parts []string
		for _, kv := range c.Args {
			// A stage's ARG without a value takes the global ARG's value.
			if kv.Value == nil {
				if _, given := b.opts.BuildArgs[kv.Key]; !given {
					for _, m := range meta.args {
						if m.key == kv.Key && m.value != nil {
							v := *m.value
							kv.Value = &v
						}
					}
				}
			}
			one := *c // keeps the line, for errors
			one.Args = []instructions.KeyValuePairOptional{kv}
			if err := b.declareArgs(st, &one); err != nil {
				return err
			}
			// History shows the value in effect: --build-arg's, or the
			// default expanded (BuildKit v0.34).
			a := st.args[len(st.args)-1]
			if a.value != nil {
				parts = append(parts, a.key+"="+*a.value)
			} else {
				parts = append(parts, a.key)
			}
		}
		st.addHistory("ARG "+strings.Join(parts, " "), true)
	case *instructions.LabelCommand:
		if st.img.Config.Labels == nil {
			st.img.Config.Labels = map[string]string{}
		}
		var parts []string
		for _, kv := range c.Labels {
			st.img.Config.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		st.addHistory("LABEL "+strings.Join(parts, " "), true)
	case *instructions.MaintainerCommand:
		st.img.Author = c.Maintainer
		st.addHistory("MAINTAINER "+c.Maintainer, true)
	case *instructions.UserCommand:
		st.img.Config.User = c.User
		st.addHistory("USER "+c.User, true)
	case *instructions.ExposeCommand:
		return b.expose(st, c)
	case *instructions.VolumeCommand:
		if st.img.Config.Volumes == nil {
			st.img.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			st.img.Config.Volumes[v] = struct{}{}
		}
		st.addHistory(fmt.Sprintf("VOLUME %v", c.Volumes), true)
	case *instructions.StopSignalCommand:
		st.img.Config.StopSignal = c.Signal
		st.addHistory("STOPSIGNAL "+c.Signal, true)
	case *instructions.ShellCommand:
		st.shell = append([]string(nil), c.Shell...)
		st.img.Config.Shell = st.shell
		st.addHistory(fmt.Sprintf("SHELL %v", c.Shell), true)
	case *instructions.CmdCommand:
		if len(c.Files) > 0 {
			return fmt.Errorf("CMD: heredocs are not supported yet")
		}
		st.img.Config.Cmd = b.commandLine(st, c.ShellDependantCmdLine)
		st.img.Config.ArgsEscaped = c.PrependShell
		st.cmdSet = true
		st.addHistory("CMD "+quoteArgs(st.img.Config.Cmd), true)
	case *instructions.EntrypointCommand:
		if len(c.Files) > 0 {
			return fmt.Errorf("ENTRYPOINT: heredocs are not supported yet")
		}
		st.img.Config.Entrypoint = b.commandLine(st, c.ShellDependantCmdLine)
		st.img.Config.ArgsEscaped = c.PrependShell
		if !st.cmdSet {
			st.img.Config.Cmd = nil
		}
		st.addHistory("ENTRYPOINT "+quoteArgs(st.img.Config.Entrypoint), true)
	case *instructions.HealthCheckCommand:
		st.img.Config.Healthcheck = c.Health
		st.addHistory(healthcheckHistory(c), true)
	case *instructions.OnbuildCommand:
		// BuildKit records ONBUILD in the config only, with no history entry.
		st.img.Config.OnBuild = append(st.img.Config.OnBuild, c.Expression)
	default:
		return fmt.Errorf("%s is not supported", strings.ToUpper(cmd.Name()))
	}
	return nil
}

// commandLine is the argv of a RUN, CMD or ENTRYPOINT: the shell form goes through SHELL.
func (b *build) commandLine(st *stage, c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string(nil), st.shell...), strings.Join(c.CmdLine, " "))
	}
	return append([]string(nil), c.CmdLine...)
}

func (b *build) expose(st *stage, c *instructions.ExposeCommand) error {
	if st.img.Config.ExposedPorts == nil {
		st.img.Config.ExposedPorts = map[string]struct{}{}
	}
	var added []string
	// The parser sorted the words as written; each may expand to several.
	for _, word := range c.Ports {
		lex := *st.lex
		words, err := lex.ProcessWords(word, envGetter{st})
		if err != nil {
			return fmt.Errorf("EXPOSE: %w", err)
		}
		for _, p := range words {
			ports, err := parsePorts(p)
			if err != nil {
				return fmt.Errorf("EXPOSE: %w", err)
			}
			for _, port := range ports {
				st.img.Config.ExposedPorts[port] = struct{}{}
				added = append(added, port)
			}
		}
	}
	// As BuildKit v0.34: the ports as a list, in that order.
	st.addHistory(fmt.Sprintf("EXPOSE %v", added), true)
	return nil
}

// parsePorts parses "80", "80/udp" or "8000-8002/tcp"; an address and host
// port before the container port ("127.0.0.1:8080:80") are ignored, as
// BuildKit does (with a lint warning).
func parsePorts(spec string) ([]string, error) {
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		spec = spec[i+1:]
	}
	port, proto, ok := strings.Cut(spec, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	var start, end int
	if _, err := fmt.Sscanf(lo, "%d", &start); err != nil || start < 0 || start > 65535 || fmt.Sprint(start) != lo {
		return nil, fmt.Errorf("invalid containerPort: %s", port)
	}
	end = start
	if isRange {
		if _, err := fmt.Sscanf(hi, "%d", &end); err != nil || end < start || end > 65535 || fmt.Sprint(end) != hi {
			return nil, fmt.Errorf("invalid range: %s", port)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// resolveWorkdir makes a WORKDIR or COPY destination absolute against the
// current working directory.
func resolveWorkdir(cur, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if cur == "" {
		cur = "/"
	}
	return path.Join(cur, p)
}

// healthcheckHistory is the history text BuildKit v0.34 writes for
// HEALTHCHECK: its health config printed with %+v.
func healthcheckHistory(c *instructions.HealthCheckCommand) string {
	return fmt.Sprintf("HEALTHCHECK %+v", *c.Health)
}
