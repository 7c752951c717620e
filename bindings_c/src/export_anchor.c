/* libpvengine's own translation unit; the exported pv_* functions come from pvengine_core,
 * pulled in whole by the linker so that none of them is dropped. */
