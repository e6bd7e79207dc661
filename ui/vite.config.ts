// The UI is served by sealwatch from ui/dist: hashed files under /assets/ (cached for a year),
// index.html for every other path (client-side routes).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
});
