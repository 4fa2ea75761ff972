package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"gantry/cluster/command"
	"gantry/config"
)

// Generic objects. Lists of config.Config whose elements are structs with a
// Name (budgets, policies, collections and whatever comes next) are put and
// deleted by one pair of commands, named by the list's JSON field, so a new
// kind of object replicates as soon as it exists in config.Config, is
// validated by config.Validate, and needs no new command type. Lists with
// dedicated commands are excluded because their commands keep invariants
// (immutable releases, hashed keys) a generic put would bypass.
var dedicated = map[string]command.Type{
	"providers": command.PutProvider,
	"models":    command.PutModel,
	"routes":    command.PutRoute,
	"features":  command.PutFeature,
	"keys":      command.PutKey,
}

// ObjectKinds lists the kinds PutObject and DeleteObject accept.
func ObjectKinds() []string {
	var kinds []string
	t := reflect.TypeOf(config.Config{})
	for i := 0; i < t.NumField(); i++ {
		if kind, ok := objectKind(t.Field(i)); ok {
			kinds = append(kinds, kind)
		}
	}
	return kinds
}

func objectKind(f reflect.StructField) (string, bool) {
	kind, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if kind == "" || kind == "-" || !f.IsExported() {
		return "", false
	}
	if _, ok := dedicated[kind]; ok {
		return "", false
	}
	if f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Struct {
		return "", false
	}
	name, ok := f.Type.Elem().FieldByName("Name")
	if !ok || name.Type.Kind() != reflect.String || len(name.Index) != 1 {
		return "", false
	}
	return kind, true
}

// objectList finds the list field of cfg for kind.
func objectList(cfg *config.Config, kind string) (reflect.Value, error) {
	if t, ok := dedicated[kind]; ok {
		return reflect.Value{}, fmt.Errorf("%w: %s have their own command, %s", ErrInvalid, kind, t)
	}
	v := reflect.ValueOf(cfg).Elem()
	for i := 0; i < v.NumField(); i++ {
		if k, ok := objectKind(v.Type().Field(i)); ok && k == kind {
			return v.Field(i), nil
		}
	}
	return reflect.Value{}, fmt.Errorf("%w: unknown object kind %q (known: %s)", ErrInvalid, kind, strings.Join(ObjectKinds(), ", "))
}

func objectName(v reflect.Value) string { return v.FieldByName("Name").String() }

func putObject(tx *txn) error {
	var p command.Object
	if err := tx.decode(&p); err != nil {
		return err
	}
	list, err := objectList(&tx.next.Config, p.Kind)
	if err != nil {
		return err
	}
	obj := reflect.New(list.Type().Elem())
	dec := json.NewDecoder(bytes.NewReader(p.Object))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj.Interface()); err != nil {
		return fmt.Errorf("%w: %s object: %w", ErrInvalid, p.Kind, err)
	}
	name := objectName(obj.Elem())
	if !validName(name) {
		return fmt.Errorf("%w: %s name %q: want 1..%d letters, digits and . _ : -", ErrInvalid, p.Kind, name, config.MaxNameLen)
	}
	if err := checkNoSecrets(obj.Interface()); err != nil {
		return err
	}
	n := list.Len()
	idx := -1
	for i := 0; i < n; i++ {
		if objectName(list.Index(i)) == name {
			idx = i
			break
		}
	}
	size := n
	if idx < 0 {
		size++
	}
	if size > config.MaxItems {
		return fmt.Errorf("%w: %s: more than %d entries", ErrInvalid, p.Kind, config.MaxItems)
	}
	out := reflect.MakeSlice(list.Type(), size, size)
	reflect.Copy(out, list)
	var before any
	if idx >= 0 {
		before = list.Index(idx).Interface()
		out.Index(idx).Set(obj.Elem())
	} else {
		out.Index(n).Set(obj.Elem())
	}
	list.Set(out)
	tx.configChanged = true
	tx.record(p.Kind+"/"+name, before, obj.Elem().Interface(), "")
	return nil
}

func deleteObject(tx *txn) error {
	var p command.ObjectName
	if err := tx.decode(&p); err != nil {
		return err
	}
	list, err := objectList(&tx.next.Config, p.Kind)
	if err != nil {
		return err
	}
	idx := -1
	for i := 0; i < list.Len(); i++ {
		if objectName(list.Index(i)) == p.Name {
			idx = i
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("%s: %w: %q", p.Kind, ErrNotFound, p.Name)
	}
	before := list.Index(idx).Interface()
	out := reflect.MakeSlice(list.Type(), 0, list.Len()-1)
	out = reflect.AppendSlice(out, list.Slice(0, idx))
	out = reflect.AppendSlice(out, list.Slice(idx+1, list.Len()))
	list.Set(out)
	tx.configChanged = true
	tx.record(p.Kind+"/"+p.Name, before, nil, "")
	return nil
}
