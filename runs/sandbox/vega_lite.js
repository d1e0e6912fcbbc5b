/* Inline renderer of a Vega-Lite subset for recipe outputs (runs/sandbox/vega_lite.py). */
(function(){
var spec=JSON.parse(document.getElementById('spec').textContent);
var root=document.getElementById('chart');
var values=(spec.data&&spec.data.values)||[];
var enc=spec.encoding||{};var mark=(typeof spec.mark==='string')?spec.mark:(spec.mark&&spec.mark.type)||'bar';
var W=spec.width||480,H=spec.height||260,L=50,B=40,T=20,R=10;
function f(ch){return enc[ch]&&enc[ch].field;}
var xf=f('x'),x2f=f('x2'),yf=f('y');
if(!xf||!yf||!values.length){root.textContent='This Vega-Lite spec uses more than the built-in subset; see the spec below.';return;}
var nominal=enc.x.type==='nominal'||enc.x.type==='ordinal';
var ys=values.map(function(v){return +v[yf];});
var ymax=Math.max.apply(null,ys.concat([0])),ymin=Math.min.apply(null,ys.concat([0]));
var cats=[],xmin=0,xmax=1;
if(nominal){values.forEach(function(v){if(cats.indexOf(String(v[xf]))<0)cats.push(String(v[xf]));});}
else{var xs=[];values.forEach(function(v){xs.push(+v[xf]);if(x2f)xs.push(+v[x2f]);});xmin=Math.min.apply(null,xs);xmax=Math.max.apply(null,xs);if(xmax===xmin)xmax=xmin+1;}
function sx(v){return nominal?L+(cats.indexOf(String(v))+0.5)*(W-L-R)/cats.length:L+(v-xmin)/(xmax-xmin)*(W-L-R);}
function sy(v){return T+(ymax-v)/((ymax-ymin)||1)*(H-T-B);}
var ns='http://www.w3.org/2000/svg',svg=document.createElementNS(ns,'svg');svg.setAttribute('width',W);svg.setAttribute('height',H);
function el(n,a){var e=document.createElementNS(ns,n);for(var k in a)e.setAttribute(k,a[k]);svg.appendChild(e);return e;}
el('line',{x1:L,y1:H-B,x2:W-R,y2:H-B,stroke:'#333'});el('line',{x1:L,y1:T,x2:L,y2:H-B,stroke:'#333'});
[ymin,(ymin+ymax)/2,ymax].forEach(function(t){var y=sy(t);el('text',{x:L-4,y:y+4,'text-anchor':'end','font-size':10}).textContent=+t.toPrecision(3);});
if(!nominal)[xmin,(xmin+xmax)/2,xmax].forEach(function(t){el('text',{x:sx(t),y:H-B+14,'text-anchor':'middle','font-size':10}).textContent=+t.toPrecision(3);});
el('text',{x:(L+W)/2,y:H-6,'text-anchor':'middle','font-size':11}).textContent=(enc.x.title||xf);
el('text',{x:12,y:(T+H-B)/2,'font-size':11,transform:'rotate(-90 12 '+((T+H-B)/2)+')','text-anchor':'middle'}).textContent=(enc.y.title||yf);
var color=(spec.mark&&spec.mark.color)||'#4c78a8',pts=[];
values.forEach(function(v){var y=+v[yf];
 if(mark==='bar'){var x0,x1;if(nominal){var w=(W-L-R)/cats.length*0.8;x0=sx(v[xf])-w/2;x1=x0+w;}else if(x2f){x0=sx(+v[xf]);x1=sx(+v[x2f]);}else{x0=sx(+v[xf])-2;x1=x0+4;}
  var r=el('rect',{x:Math.min(x0,x1),y:Math.min(sy(y),sy(0)),width:Math.max(1,Math.abs(x1-x0)-1),height:Math.abs(sy(0)-sy(y)),fill:color});
  var t=document.createElementNS(ns,'title');t.textContent=xf+': '+v[xf]+(x2f?'–'+v[x2f]:'')+', '+yf+': '+y;r.appendChild(t);}
 else pts.push([sx(nominal?v[xf]:+v[xf]),sy(y)]);});
if(mark==='line')el('polyline',{points:pts.map(function(p){return p.join(',');}).join(' '),fill:'none',stroke:color,'stroke-width':2});
if(mark==='point'||mark==='circle')pts.forEach(function(p){el('circle',{cx:p[0],cy:p[1],r:3,fill:color});});
if(nominal)cats.forEach(function(c){el('text',{x:sx(c),y:H-B+14,'text-anchor':'middle','font-size':10}).textContent=c;});
root.appendChild(svg);
})();
