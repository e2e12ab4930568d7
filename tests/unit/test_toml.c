/* The TOML reader (toml.h): what it builds from good input, and a table of
 * bad inputs each refused with its line and a message saying why. */
#include "hoist/toml.h"
#include "test_util.h"

static hoist_toml *parse_ok(const char *text) {
  hoist_err *err = NULL;
  hoist_toml *t = NULL;
  assert_ok(hoist_toml_parse(text, strlen(text), "t.toml", &t, &err), &err);
  return t;
}

static const char *str_at(const hoist_toml *t, const char *key) {
  const hoist_toml *v = hoist_toml_get(t, key);
  assert_non_null(v);
  assert_int_equal(v->kind, HOIST_TOML_STRING);
  return v->str;
}

static void test_toml_registries_conf(void **state) {
  (void)state;
  const char *text = "# a registries.conf\n"
                     "unqualified-search-registries = [\"registry.fedoraproject.org\",\n"
                     "  'quay.io', # Red Hat\n"
                     "  \"docker.io\",\n"
                     "]\n"
                     "short-name-mode=\"enforcing\"\n"
                     "\n"
                     "[[registry]]\n"
                     "prefix = \"example.com/foo\"\n"
                     "location = \"internal.example.com/bar\"\n"
                     "insecure = true\n"
                     "blocked = false\n"
                     "\n"
                     "[[registry.mirror]]\n"
                     "location = \"mirror-1.local/foo\"\n"
                     "[[registry.mirror]]\n"
                     "location = \"mirror-2.local/foo\"\n"
                     "insecure = true\n"
                     "\r\n"
                     "[[registry]]\n"
                     "location = \"quay.io\"\n"
                     "\n"
                     "[aliases]\n"
                     "\"fedora\" = \"registry.fedoraproject.org/fedora\"\n"
                     "'ubi8' = 'registry.access.redhat.com/ubi8'\n"
                     "[hoist]\n"
                     "short-name-prefix = \"ghcr.io/nvidia/openshell-community/sandboxes\"\n";
  hoist_toml *t = parse_ok(text);
  const hoist_toml *usr = hoist_toml_get(t, "unqualified-search-registries");
  assert_non_null(usr);
  assert_int_equal(usr->kind, HOIST_TOML_ARRAY);
  assert_int_equal(usr->n, 3);
  assert_string_equal(usr->items[1]->str, "quay.io");
  assert_int_equal(usr->line, 2);
  assert_string_equal(str_at(t, "short-name-mode"), "enforcing");
  const hoist_toml *regs = hoist_toml_get(t, "registry");
  assert_int_equal(regs->kind, HOIST_TOML_ARRAY);
  assert_int_equal(regs->n, 2);
  const hoist_toml *r0 = regs->items[0];
  assert_int_equal(r0->line, 8);
  assert_string_equal(str_at(r0, "location"), "internal.example.com/bar");
  assert_true(hoist_toml_get(r0, "insecure")->boolean);
  assert_false(hoist_toml_get(r0, "blocked")->boolean);
  const hoist_toml *m = hoist_toml_get(r0, "mirror");
  assert_int_equal(m->n, 2);
  assert_string_equal(str_at(m->items[1], "location"), "mirror-2.local/foo");
  assert_null(hoist_toml_get(regs->items[1], "mirror"));
  const hoist_toml *al = hoist_toml_get(t, "aliases");
  assert_string_equal(str_at(al, "fedora"), "registry.fedoraproject.org/fedora");
  assert_string_equal(str_at(al, "ubi8"), "registry.access.redhat.com/ubi8");
  assert_string_equal(str_at(hoist_toml_get(t, "hoist"), "short-name-prefix"),
                      "ghcr.io/nvidia/openshell-community/sandboxes");
  hoist_toml_free(t);
}

static void test_toml_values(void **state) {
  (void)state;
  hoist_toml *t = parse_ok("a.b.\"c d\" = 1_000\n"
                           "a.e = 0x7f\n"
                           "n = [0o17, 0b101, -9223372036854775808, 9223372036854775807]\n"
                           "s = \"tab\\there \\u00e9 \\U0001F600\"\n"
                           "lit = 'C:\\path'\n"
                           "ml = \"\"\"\nline1\\\n    line2\"\"\"\n"
                           "mll = '''\nraw\\n\n'''\n"
                           "inl = { x = 1, y.z = 'w', q = [ ] }\n"
                           "empty = \"\"\n"
                           "[t]\n[t.u]\nk = true\n");
  const hoist_toml *a = hoist_toml_get(t, "a");
  assert_int_equal(hoist_toml_get(hoist_toml_get(a, "b"), "c d")->num, 1000);
  assert_int_equal(hoist_toml_get(a, "e")->num, 127);
  const hoist_toml *n = hoist_toml_get(t, "n");
  assert_int_equal(n->items[0]->num, 15);
  assert_int_equal(n->items[1]->num, 5);
  assert_true(n->items[2]->num == INT64_MIN);
  assert_true(n->items[3]->num == INT64_MAX);
  assert_string_equal(str_at(t, "s"), "tab\there \xc3\xa9 \xf0\x9f\x98\x80");
  assert_string_equal(str_at(t, "lit"), "C:\\path");
  assert_string_equal(str_at(t, "ml"), "line1line2");
  assert_string_equal(str_at(t, "mll"), "raw\\n\n");
  const hoist_toml *inl = hoist_toml_get(t, "inl");
  assert_int_equal(hoist_toml_get(inl, "x")->num, 1);
  assert_string_equal(str_at(hoist_toml_get(inl, "y"), "z"), "w");
  assert_int_equal(hoist_toml_get(inl, "q")->n, 0);
  assert_string_equal(str_at(t, "empty"), "");
  assert_true(hoist_toml_get(hoist_toml_get(hoist_toml_get(t, "t"), "u"), "k")->boolean);
  assert_null(hoist_toml_get(t, "missing"));
  hoist_toml_free(t);
  t = parse_ok("");
  assert_int_equal(t->n, 0);
  hoist_toml_free(t);
}

/* How each node was written, for readers of a stricter subset. */
static void test_toml_written_forms(void **state) {
  (void)state;
  hoist_toml *t = parse_ok("[a.\"q\"]\nd.e = 1\nm = \"\"\"x\"\"\"\nl = [1]\ni = {}\n"
                           "[[r]]\n'k' = 2\n");
  const hoist_toml *a = hoist_toml_get(t, "a");
  assert_true(a->flags & HOIST_TOML_W_IMPLICIT);
  const hoist_toml *q = hoist_toml_get(a, "q");
  assert_true(q->flags & HOIST_TOML_W_HEADER);
  assert_true(q->flags & HOIST_TOML_W_QUOTED_KEY);
  assert_true(hoist_toml_get(q, "d")->flags & HOIST_TOML_W_DOTTED);
  assert_false(hoist_toml_get(q, "d")->flags & HOIST_TOML_W_QUOTED_KEY);
  assert_true(hoist_toml_get(q, "m")->flags & HOIST_TOML_W_MULTILINE);
  assert_true(hoist_toml_get(q, "l")->flags & HOIST_TOML_W_INLINE);
  assert_true(hoist_toml_get(q, "i")->flags & HOIST_TOML_W_INLINE);
  const hoist_toml *r = hoist_toml_get(t, "r");
  assert_true(r->flags & HOIST_TOML_W_TABLES);
  assert_true(hoist_toml_get(r->items[0], "k")->flags & HOIST_TOML_W_QUOTED_KEY);
  hoist_toml_free(t);
}

static void test_toml_bad_inputs(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *msg; /* "t.toml:LINE: ..." */
  } cases[] = {
      {"a = 1\na = 2\n", "t.toml:2: duplicate key 'a' (first at line 1)"},
      {"[x]\n[x]\n", "t.toml:2: duplicate table [x] (first at line 1)"},
      {"a = \"open\n", "t.toml:1: unterminated string"},
      {"a = 'x' b\n", "t.toml:1: unexpected 'b' after the value"},
      {"a = 1.5\n", "t.toml:1: 1.5 is not an integer"},
      {"a = 1979-05-27\n", "t.toml:1: 1979-05-27 is not an integer"},
      {"a = 012\n", "t.toml:1: 012: leading zeros"},
      {"a = 9223372036854775808\n", "t.toml:1: 9223372036854775808 does not fit"},
      {"a = 1__0\n", "t.toml:1: 1__0 is not an integer"},
      {"a = inf\n", "t.toml:1: floats are not supported"},
      {"\n\na = \"\\q\"\n", "t.toml:3: invalid escape '\\q'"},
      {"a = \"\\u00\"\n", "t.toml:1: invalid unicode escape: \\u needs 4 hex digits"},
      {"a = \"\\u0000\"\n", "t.toml:1: invalid unicode escape U+0000"},
      {"a = \"\\uD800\"\n", "t.toml:1: invalid unicode escape U+D800"},
      {"a = [1, 2\n", "t.toml:2: unterminated array"},
      {"a = [1 2]\n", "t.toml:1: expected ',' or ']'"},
      {"a = {x = 1\n", "t.toml:1: expected ',' or '}' in an inline table"},
      {"a = {x = 1}\n[a]\n", "t.toml:2: duplicate table [a] (first at line 1)"},
      {"a = {x = 1}\na.y = 2\n", "t.toml:2: a is a table defined at line 1"},
      {"a = {x = 1}\n[a.b]\n", "t.toml:2: a is an inline table (line 1)"},
      {"a = 1\n[a.b]\n", "t.toml:2: a is a integer (line 1), not a table"},
      {"[[r]]\n[r]\n", "t.toml:2: duplicate table [r]"},
      {"[r]\n[[r]]\n", "t.toml:2: [[r]]: r is a table defined at line 1"},
      {"a = [1]\n[[a]]\n", "t.toml:2: [[a]]: a is a array"},
      {"[x]\n[x.y]\nz=1\n[x]\n", "t.toml:4: duplicate table [x] (first at line 1)"},
      {"a.b = 1\n[a]\n", "t.toml:2: duplicate table [a]"},
      {"[a.b]\n[a]\nb.c = 1\n", "t.toml:3: b is a table defined at line 1"},
      {"[x\n", "t.toml:1: expected ']' to close the header"},
      {"[[x]\n", "t.toml:1: expected ']]' to close the header"},
      {"[]\n", "t.toml:1: expected a name (a key), not ']'"},
      {"= 1\n", "t.toml:1: expected a name (a key), not '='"},
      {"a 1\n", "t.toml:1: expected '=' after a"},
      {"a = \n", "t.toml:1: expected a value"},
      {"a = \"x\ty\x01\"\n", "t.toml:1: control character in a string (0x01)"},
      {"a = -0x1\n", "t.toml:1: a sign before 0x is not allowed"},
      {"a = 1\x01\n", "t.toml:1: unexpected control character 0x01"},
      {"a = 1 # ok\r", "t.toml:1: stray carriage return"},
      {"\"\"\"k\"\"\" = 1\n", "t.toml:1: a key cannot be a multi-line string"},
      {"a = \"\"\"never closed\n\n", "t.toml:3: unterminated string"},
      {"a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
       "values nested more than 32 deep"},
      {"a = tru\n", "t.toml:1: tru is not an integer"},
      {"a = [+", "t.toml:1: + is not an integer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    hoist_toml *t = NULL;
    int r = hoist_toml_parse(cases[i].text, strlen(cases[i].text), "t.toml", &t, &err);
    if (r == 0)
      fail_msg("case %zu (%s) parsed", i, cases[i].text);
    assert_null(t);
    assert_int_equal(hoist_err_root_code(err), HOIST_E_FORMAT);
    assert_err_contains(&err, cases[i].msg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_toml_registries_conf),
      cmocka_unit_test(test_toml_values),
      cmocka_unit_test(test_toml_written_forms),
      cmocka_unit_test(test_toml_bad_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
