/* ABI compatibility: an application built against the plugin header as released with API 1
 * (frozen in tests/abi/v1/) asks for API 1 and runs a session against today's library. It must
 * keep working however many functions later APIs append. Usage: abi_v1_app PLUGIN.so */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "roilens_plugin/roilens_plugin.h" /* tests/abi/v1: the API 1 header, not today's */

#if ROILENS_PLUGIN_API_VERSION != 1
#error "abi_v1_app must be compiled against the frozen API 1 header"
#endif

static const char* kConfig =
    "{\"rois\": [{\"name\": \"a\", \"rect\": [0, 0, 32, 32], \"task\": \"count\","
    " \"object\": \"bolts\"},"
    " {\"name\": \"b\", \"rect\": [32, 32, 32, 32], \"task\": \"count\", \"object\": \"nuts\"}]}";

#define CHECK(cond, code)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      printf("FAIL %d: %s (last_error: %s)\n", code, #cond,                     \
             api != NULL && api->last_error != NULL ? api->last_error() : "-"); \
      return code;                                                              \
    }                                                                           \
  } while (0)

int main(int argc, char** argv) {
  const roilens_plugin_api* api = NULL;
  CHECK(argc == 2, 1);
  void* dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    printf("dlopen: %s\n", dlerror());
    return 2;
  }
  roilens_plugin_init_fn init = (roilens_plugin_init_fn)dlsym(dl, ROILENS_PLUGIN_INIT_SYMBOL);
  CHECK(init != NULL, 3);
  roilens_init_error e;
  memset(&e, 0, sizeof e);
  api = init(ROILENS_PLUGIN_ABI_VERSION, 1, &e);
  if (api == NULL) printf("init refused: %s\n", e.message);
  CHECK(api != NULL, 4);
  CHECK(api->abi_version == 1, 5);
  CHECK(api->api_version >= 1, 6);
  /* The library's table may be longer than the one this header knows, never shorter. */
  CHECK(api->size >= sizeof(roilens_plugin_api), 7);

  roilens_handle* h = NULL;
  CHECK(api->create(kConfig, "{\"coder\": \"echo\"}", &h) == ROILENS_OK, 8);
  static unsigned char pixels[64 * 64 * 3];
  memset(pixels, 100, sizeof pixels);
  for (int i = 0; i < 3; ++i) {
    CHECK(api->submit(h, pixels, 64, 64, 64 * 3, 10 + i, 0.1 * i) == ROILENS_OK, 9);
  }
  CHECK(api->flush(h) == ROILENS_OK, 10);
  roilens_frame_out out;
  for (int i = 0; i < 3; ++i) {
    CHECK(api->take(h, -1, &out) == ROILENS_OK, 11);
    CHECK(out.frame_index == 10 + i, 12);
    CHECK(out.width == 64 && out.height == 64 && out.pixels != NULL, 13);
    CHECK(out.results_json != NULL && strlen(out.results_json) == out.results_json_size, 14);
    CHECK(strstr(out.results_json, "\"roi\":\"a\"") != NULL, 15);
    CHECK(strstr(out.results_json, "\"roi\":\"b\"") != NULL, 16);
    CHECK(strstr(out.results_json, "\"status\":\"error\"") == NULL, 17);
    api->frame_release(&out);
    CHECK(out.internal == NULL, 18);
  }
  CHECK(api->take(h, -1, &out) == ROILENS_END, 19);
  CHECK(api->destroy(h) == ROILENS_OK, 20);
  CHECK(api->destroy(h) == ROILENS_ERROR_INVALID_HANDLE, 21);
  printf("ok: API 1 caller on library API %d (table %zu bytes, this header's %zu)\n",
         api->api_version, api->size, sizeof(roilens_plugin_api));
  return dlclose(dl) == 0 ? 0 : 22;
}
