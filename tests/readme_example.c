/* Store "hello" -> "world" in example.mmkv, then read it back. */
#include <stdio.h>
#include <stdlib.h>
#include <mmkv.h>

#define CHECK(call) do { int rc_ = (call); if (rc_ != 0) { \
	fprintf(stderr, "%s: %s\n", #call, mmkv_strerror(rc_)); exit(1); } } while (0)

int main(void)
{
	mmkv_env *env;
	mmkv_txn *txn;
	mmkv_dbi dbi;
	mmkv_val key = { 5, "hello" }, val = { 5, "world" }, out;

	CHECK(mmkv_env_create(&env));
	CHECK(mmkv_env_open(env, "example.mmkv", 0, 0644));
	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));           /* the write transaction */
	CHECK(mmkv_dbi_open(txn, NULL, 0, &dbi));            /* the default database */
	CHECK(mmkv_put(txn, dbi, &key, &val, 0));
	CHECK(mmkv_txn_commit(txn));
	CHECK(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn)); /* a read snapshot */
	CHECK(mmkv_get(txn, dbi, &key, &out));
	printf("%.*s\n", (int)out.size, (char *)out.data);
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	return 0;
}
