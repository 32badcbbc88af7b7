// Node 20 lacks Promise.withResolvers, which js-ipfs 0.66's dependencies call.
// Loaded with NODE_OPTIONS="--require scripts/js/withresolvers.cjs".
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
