package release

import (
	"errors"
	"fmt"
	"strings"

	"gantry/config"
	"gantry/pipeline/prompt"
	"gantry/pipeline/validate"
)

// Compiled is a release made ready to serve: its template parsed, its
// schema and tool schemas compiled. The pipeline builds one per release when
// a configuration is loaded and keeps it with the release; it is immutable
// and safe for concurrent use.
type Compiled struct {
	Release  config.Release
	Hash     string
	Template *prompt.Template
	Schema   *validate.Schema // nil when the release has no schema
	Tools    *validate.Tools
}

// Compile parses and compiles everything of a release that is checked per
// call. Errors say which field is wrong and where.
func Compile(rel config.Release) (*Compiled, error) {
	var ps config.ValidationError
	c := &Compiled{Release: rel, Hash: rel.Hash()}
	var err error
	if c.Template, err = prompt.Compile(rel); err != nil {
		ps = append(ps, templateProblem(err))
	}
	if rel.Schema != nil {
		if c.Schema, err = validate.Compile(rel.Schema); err != nil {
			ps = append(ps, config.Problem{Path: "schema", Reason: strings.TrimPrefix(err.Error(), validate.ErrInvalidSchema.Error()+": ")})
		}
	}
	if c.Tools, err = validate.CompileTools(rel.Tools); err != nil {
		ps = append(ps, config.Problem{Path: "tools", Reason: err.Error()})
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}

func templateProblem(err error) config.Problem {
	var se *prompt.SyntaxError
	if errors.As(err, &se) {
		return config.Problem{Path: se.Message, Reason: fmt.Sprintf("line %d, column %d: %s", se.Line, se.Column, se.Reason)}
	}
	// Declaration errors already start with their path, e.g. "variables[0]: …".
	path, reason, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return config.Problem{Path: "template", Reason: err.Error()}
	}
	return config.Problem{Path: path, Reason: reason}
}

// Check decides whether rel may be created as a release of feature in cfg:
// the rules the configuration loader applies (known route or model, roles,
// variables, parameters, tool names, a known collection and sound retrieval
// settings), a template that compiles against its variables, a valid output
// schema and tool parameter schemas, and immutability (an existing version
// may only be re-created with identical content). It returns a
// config.ValidationError whose paths start with the release id, e.g.
// "support-answer@v3.template[0]", or nil.
func Check(cfg *config.Config, feature string, rel config.Release) error {
	prefix := config.ReleaseID(feature, rel.Version)
	if rel.Version == 0 {
		prefix = feature + "@next" // numbered when the create applies
	}
	var ps config.ValidationError
	add := func(p config.Problem) {
		if p.Path == "" {
			p.Path = prefix
		} else {
			p.Path = prefix + "." + p.Path
		}
		ps = append(ps, p)
	}

	// Run the loader's validation on a copy of the configuration that holds
	// the new release, and keep what it says about this release only.
	scratch := *cfg
	scratch.Features = append([]config.Feature(nil), cfg.Features...)
	fi := -1
	for i, f := range scratch.Features {
		if f.Name == feature {
			fi = i
		}
	}
	if rel.Version == 0 && fi >= 0 {
		// Checked as the number it will most likely get; the create
		// numbers it when it applies.
		for _, r := range scratch.Features[fi].Releases {
			rel.Version = max(rel.Version, r.Version)
		}
		rel.Version++
	}
	if fi < 0 {
		scratch.Features = append(scratch.Features, config.Feature{Name: feature, Labels: config.Labels{Production: rel.Version}})
		fi = len(scratch.Features) - 1
	} else if old, ok := scratch.Features[fi].Release(rel.Version); ok && old.Hash() != rel.Hash() {
		add(config.Problem{Path: "version", Reason: fmt.Sprintf("v%d already exists with other content (%s); releases are immutable, create a new version", rel.Version, old.Hash())})
	}
	f := scratch.Features[fi]
	var releases []config.Release
	for _, r := range f.Releases {
		if r.Version != rel.Version {
			releases = append(releases, r)
		}
	}
	ri := len(releases)
	f.Releases = append(releases, rel)
	scratch.Features[fi] = f
	featurePath := fmt.Sprintf("features[%d]", fi)
	relPath := fmt.Sprintf("%s.releases[%d]", featurePath, ri)
	if err := scratch.Validate(); err != nil {
		var v config.ValidationError
		if !errors.As(err, &v) {
			return err
		}
		for _, p := range v {
			switch {
			case p.Path == relPath:
				p.Path = ""
				add(p)
			case strings.HasPrefix(p.Path, relPath+"."):
				p.Path = strings.TrimPrefix(p.Path, relPath+".")
				add(p)
			case p.Path == featurePath+".name":
				add(config.Problem{Path: "feature", Reason: p.Reason})
			}
		}
	}

	if _, err := Compile(rel); err != nil {
		var v config.ValidationError
		if errors.As(err, &v) {
			for _, p := range v {
				add(p)
			}
		} else {
			add(config.Problem{Reason: err.Error()})
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

// Pin copies the collection's chunking rules into a release whose retrieval
// strategy names none, so the stored release (and its hash) fixes the rules
// it was evaluated with even if the collection's defaults change later.
// rel itself is not changed.
func Pin(cfg *config.Config, rel config.Release) (config.Release, error) {
	if rel.Retrieval == nil || rel.Retrieval.Chunking != nil {
		return rel, nil
	}
	col, ok := cfg.Collection(rel.Retrieval.Collection)
	if !ok {
		return rel, fmt.Errorf("retrieval.collection: unknown collection %q", rel.Retrieval.Collection)
	}
	r := *rel.Retrieval
	rules := col.Chunking.WithDefaults()
	r.Chunking = &rules
	rel.Retrieval = &r
	return rel, nil
}

// CheckConfig compiles every release of cfg (template, schema, tools), the
// part of a release config.Validate does not check. Problems carry the
// release id in their path.
func CheckConfig(cfg *config.Config) error {
	var ps config.ValidationError
	for _, f := range cfg.Features {
		for _, rel := range f.Releases {
			if _, err := Compile(rel); err != nil {
				id := config.ReleaseID(f.Name, rel.Version)
				var ve config.ValidationError
				if errors.As(err, &ve) {
					for _, p := range ve {
						p.Path = strings.TrimSuffix(id+"."+p.Path, ".")
						ps = append(ps, p)
					}
				} else {
					ps = append(ps, config.Problem{Path: id, Reason: err.Error()})
				}
			}
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}
