// How many thread-block clusters of c blocks (one block a SM: 200 KB of shared memory each) the GPU
// holds at once, c = 1..16: the GPC sizes decide it.
#include <cstdio>
#include <cuda_runtime.h>
__global__ void __cluster_dims__(1, 1, 1) dummy1(int* x) { extern __shared__ int s[]; if (x) x[0] = s[0]; }
__global__ void dummy(int* x) { extern __shared__ int s[]; if (x) x[0] = s[0]; }
int main() {
  cudaDeviceProp prop; cudaGetDeviceProperties(&prop, 0);
  printf("%s: %d SMs\n", prop.name, prop.multiProcessorCount);
  const int smem = 200 * 1024;
  cudaFuncSetAttribute(dummy, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaFuncSetAttribute(dummy, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  for (int c = 1; c <= 16; ++c) {
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(c); config.blockDim = dim3(512); config.dynamicSmemBytes = smem;
    cudaLaunchAttribute attr[1]; attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = c; attr[0].val.clusterDim.y = attr[0].val.clusterDim.z = 1;
    config.attrs = attr; config.numAttrs = 1;
    int n = -1; cudaError_t e = cudaOccupancyMaxActiveClusters(&n, dummy, &config);
    printf("cluster %2d: %3d resident (%3d SMs)%s\n", c, n, n * c, e ? cudaGetErrorString(e) : "");
  }
}
