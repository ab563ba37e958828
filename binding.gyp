{
  "targets": [
    {
      "target_name": "deltaedit_native",
      "sources": [
        "native/addon.cc",
        "native/threads.cc",
        "native/blas.cc",
        "native/lapack.cc",
        "native/norm.cc",
        "native/pointwise.cc",
        "native/attention.cc",
        "native/skinny.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math", "-fexceptions", "<!@(node scripts/probe-blas.cjs --cflags)"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "ldflags": ["-fopenmp"],
      "libraries": ["<!@(node scripts/probe-blas.cjs --libs)"]
    }
  ]
}
