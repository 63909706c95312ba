#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int c,char**v){int n=atoi(v[1]),k=atoi(v[2]),m=c>4?atoi(v[4]):8;openblas_set_num_threads(atoi(v[3]));
float*w=malloc(4L*n*k),*x=malloc(4L*m*k),*y=malloc(4L*m*n);for(long i=0;i<(long)n*k;i++)w[i]=(i%11)*0.01f;for(int i=0;i<m*k;i++)x[i]=(i%13)*0.1f;
double best=1e9;for(int r=0;r<9;r++){double t0=now();for(int q=0;q<20;q++)cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,m,n,k,1,x,k,w,k,0,y,n);double dt=(now()-t0)/20;if(dt<best)best=dt;}
printf("sgemm m%d n%d k%d: %.1f GFLOP/s %.1f us\n",m,n,k,2.0*m*n*k/best/1e9,best*1e6);}
